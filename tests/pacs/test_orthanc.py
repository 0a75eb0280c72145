"""Query, retrieve and send against a real Orthanc holding the real chest CT, by both routes.

Each retrieve is checked against the source: the same 64 instances arrive, and the staged series
loads with the same grid and the same HU as the files it came from.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from orthanc_kit import PASSWORD, LoadedPacs, free_port

from readerapp.errors import PacsError

pytestmark = [pytest.mark.orthanc, pytest.mark.realdata]


@pytest.fixture(scope="module")
def source_volume(chest_ct_dir: Path):
    from readerapp.io.dicom import load_series

    return load_series([chest_ct_dir])[0]


def _same_as_source(folder: Path, source) -> None:  # type: ignore[no-untyped-def]
    from readerapp.io.dicom import load_series

    vol = load_series([folder])[0]
    assert vol.shape == source.shape == (64, 512, 512)
    assert vol.spacing == pytest.approx(source.spacing)
    assert vol.origin == pytest.approx(source.origin)
    assert vol.series_uid == source.series_uid
    assert np.array_equal(vol.hu, source.hu)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))


def _client(name: str, settings):  # type: ignore[no-untyped-def]
    from readerapp.pacs import open_client

    return open_client(name, settings)


@pytest.mark.parametrize("node", ["web", "dimse"])
def test_echo(pacs_settings, node: str) -> None:
    msg = _client(node, pacs_settings).echo()
    assert node in msg and ("C-ECHO" in msg or "DICOMweb" in msg)


def test_dicomweb_query_and_retrieve(pacs_settings, pacs_with_ct: LoadedPacs, source_volume, tmp_path: Path) -> None:
    web = _client("web", pacs_settings)
    studies = web.find_studies(patient_id="Lung_Dx-A0001")
    assert [s.study_uid for s in studies] == [pacs_with_ct.study_uid]
    assert studies[0].modalities == ("CT",) and studies[0].n_instances == 64
    assert web.find_studies(patient_id="NOBODY") == []
    series = web.find_series(pacs_with_ct.study_uid)
    assert [(s.series_uid, s.modality, s.n_instances) for s in series] == [(pacs_with_ct.series_uid, "CT", 64)]
    rec = Recorder()
    res = web.retrieve_series(pacs_with_ct.study_uid, pacs_with_ct.series_uid, tmp_path, rec)
    assert (res.expected, res.received, res.skipped, res.complete) == (64, 64, 0, True)
    assert {p.stem for p in res.folder.glob("*.dcm")} == set(pacs_with_ct.sop_uids)
    fractions = [f for f, _ in rec.calls]
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    _same_as_source(res.folder, source_volume)


def test_cfind_and_cget(pacs_settings, pacs_with_ct: LoadedPacs, source_volume, tmp_path: Path) -> None:
    node = _client("dimse", pacs_settings)
    studies = node.find_studies(patient_id="Lung_Dx-A0001")
    assert [(s.study_uid, s.n_series) for s in studies] == [(pacs_with_ct.study_uid, 1)]
    series = node.find_series(pacs_with_ct.study_uid)
    assert [s.series_uid for s in series] == [pacs_with_ct.series_uid]
    assert sorted(node.find_instances(pacs_with_ct.study_uid, pacs_with_ct.series_uid)) == sorted(pacs_with_ct.sop_uids)
    res = node.get_series(pacs_with_ct.study_uid, pacs_with_ct.series_uid, tmp_path)
    assert (res.received, res.skipped, res.complete) == (64, 0, True)
    _same_as_source(res.folder, source_volume)


def test_cfind_and_cmove(pacs_settings, pacs_with_ct: LoadedPacs, source_volume, tmp_path: Path) -> None:
    node = _client("dimse", pacs_settings)
    rec = Recorder()
    res = node.move_series(pacs_with_ct.study_uid, pacs_with_ct.series_uid, tmp_path, rec)
    assert (res.received, res.skipped, res.complete) == (64, 0, True)
    assert rec.calls[-1][0] == 1.0
    _same_as_source(res.folder, source_volume)
    manifest = (res.folder / "manifest.json").read_text()
    from readerapp import __version__

    assert f'"readerapp_version": "{__version__}"' in manifest and '"complete": true' in manifest


def _preseed_half(pacs: LoadedPacs, root: Path) -> tuple[Path, dict[str, int]]:
    """Copy every other source instance into the staging folder, as an interrupted run leaves it."""
    folder = root / pacs.study_uid / pacs.series_uid
    folder.mkdir(parents=True)
    inodes = {}
    for sop in sorted(pacs.sop_uids)[::2]:
        dst = folder / f"{sop}.dcm"
        shutil.copyfile(pacs.sop_uids[sop], dst)
        inodes[sop] = dst.stat().st_ino
    (folder / "half-written.part").write_bytes(b"\0" * 100)  # a torn file from the interruption
    return folder, inodes


@pytest.mark.parametrize("route", ["wado", "get", "move"])
def test_interrupted_retrieve_resumes(pacs_settings, pacs_with_ct: LoadedPacs, source_volume, tmp_path: Path,
                                      route: str) -> None:
    from readerapp.pacs.pull import retrieve_series

    folder, inodes = _preseed_half(pacs_with_ct, tmp_path)
    client = _client("web" if route == "wado" else "dimse", pacs_settings)
    res = retrieve_series(client, pacs_with_ct.study_uid, pacs_with_ct.series_uid, tmp_path, route=route)
    assert (res.expected, res.skipped, res.received, res.complete) == (64, 32, 32, True)
    assert res.folder == folder
    # the pre-seeded files were not moved again (same inode: not rewritten)
    assert all((folder / f"{sop}.dcm").stat().st_ino == ino for sop, ino in inodes.items())
    (folder / "half-written.part").unlink()
    _same_as_source(folder, source_volume)
    again = retrieve_series(client, pacs_with_ct.study_uid, pacs_with_ct.series_uid, tmp_path, route=route)
    assert (again.skipped, again.received) == (64, 0)


def test_refused_association_names_the_ae_title(pacs_settings, pacs_with_ct: LoadedPacs) -> None:
    from readerapp.pacs.dimse import DimseNode

    node = pacs_settings.pacs["dimse"]
    node.ae_title = "NOT_ORTHANC"
    with pytest.raises(PacsError, match="refused the association.*NOT_ORTHANC"):
        DimseNode("dimse", node).echo()


def test_closed_port_is_a_clear_error(pacs_settings) -> None:
    from readerapp.pacs.dimse import DimseNode

    node = pacs_settings.pacs["dimse"]
    node.port = free_port()
    with pytest.raises(PacsError, match="cannot connect.*check host, port"):
        DimseNode("dimse", node).echo()
    web = pacs_settings.pacs["web"]
    web.url = f"http://127.0.0.1:{free_port()}/dicom-web"
    with pytest.raises(PacsError, match="cannot connect"):
        _client("web", pacs_settings).echo()


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never says a word (a hung PACS)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conns.append(srv.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


def test_timeouts_are_clear_errors(pacs_settings, silent_server: int) -> None:
    from readerapp.pacs.dimse import DimseNode

    node = pacs_settings.pacs["dimse"]
    node.port, node.timeout_s = silent_server, 1.0
    with pytest.raises(PacsError, match=r"timed out"):
        DimseNode("dimse", node).echo()
    web = pacs_settings.pacs["web"]
    web.url, web.timeout_s = f"http://127.0.0.1:{silent_server}/dicom-web", 1.0
    with pytest.raises(PacsError, match=r"did not answer within 1 s \(timed out\)"):
        _client("web", pacs_settings).echo()


def test_wrong_password_and_unknown_study(pacs_settings, pacs_with_ct: LoadedPacs, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("READERAPP_PACS_PASSWORD_WEB", "wrong")
    with pytest.raises(PacsError, match="refused the credentials"):
        _client("web", pacs_settings).echo()
    monkeypatch.setenv("READERAPP_PACS_PASSWORD_WEB", PASSWORD)
    for name in ("web", "dimse"):
        with pytest.raises(PacsError, match="unknown study"):
            _client(name, pacs_settings).retrieve_series("1.2.3.4", "1.2.3.4.5", tmp_path)


@pytest.mark.parametrize("route", ["wado", "get", "move"])
def test_cancelled_retrieve_resumes(pacs_settings, pacs_with_ct: LoadedPacs, tmp_path: Path, route: str) -> None:
    """Stopping a transfer midway (the GUI's cancel button) leaves only whole files; the next call
    moves just the rest."""
    from readerapp.pacs.pull import retrieve_series
    from readerapp.progress import Cancelled

    client = _client("web" if route == "wado" else "dimse", pacs_settings)

    def cancel_midway(fraction: float, message: str) -> None:
        if 0.25 <= fraction < 1.0:
            raise Cancelled()

    with pytest.raises(Cancelled):
        retrieve_series(client, pacs_with_ct.study_uid, pacs_with_ct.series_uid, tmp_path, route=route,
                        progress=cancel_midway)
    folder = tmp_path / pacs_with_ct.study_uid / pacs_with_ct.series_uid
    first = {p.stem for p in folder.glob("*.dcm")}
    assert first <= set(pacs_with_ct.sop_uids)
    import pydicom

    for f in folder.glob("*.dcm"):  # whole files only: each parses to its last element
        assert "PixelData" in pydicom.dcmread(f)
    res = retrieve_series(client, pacs_with_ct.study_uid, pacs_with_ct.series_uid, tmp_path, route=route)
    assert res.complete and res.skipped == len(first) < 64 and res.received == 64 - len(first)


def test_busy_storage_port_is_a_clear_error(pacs_settings, pacs_with_ct: LoadedPacs, tmp_path: Path) -> None:
    import socket as _socket

    from readerapp.pacs.dimse import DimseNode

    with _socket.socket() as blocker:
        blocker.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        blocker.bind(("", pacs_settings.storage_port))
        blocker.listen(1)
        node = DimseNode("dimse", pacs_settings.pacs["dimse"], local_ae_title="READERAPP",
                         storage_port=pacs_settings.storage_port)
        with pytest.raises(PacsError, match=f"cannot start our storage SCP on port {pacs_settings.storage_port}"):
            node.move_series(pacs_with_ct.study_uid, pacs_with_ct.series_uid, tmp_path)
