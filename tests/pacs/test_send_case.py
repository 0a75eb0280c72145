"""``pacs send-read --case`` on a concordant case, against an in-memory PACS (no Orthanc needed):
both reads behind the final value go back as SEG + SR referencing the original series."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from readerapp import __version__
from readerapp.cli import main
from readerapp.pacs.models import RetrieveResult, SendResult, SeriesHit

SHAPE, SPACING = (12, 48, 48), (6.0, 6.0, 10.0)
PW = {"admin": "admin-pass-1234", "ra": "reader-a-pass-1", "rb": "reader-b-pass-1", "stat": "stat-pass-1234"}


class FakePacs:
    """Holds one series (the original files) and keeps what it is sent."""

    name = "fake"

    def __init__(self, folder: Path, study_uid: str, series_uid: str) -> None:
        self.folder, self.study_uid, self.series_uid = folder, study_uid, series_uid
        self.received: list[Path] = []

    def find_series(self, study_uid: str, modality: str = "CT") -> list[SeriesHit]:
        return [SeriesHit(self.study_uid, self.series_uid, "CT")] if study_uid == self.study_uid else []

    def retrieve_series(self, study_uid: str, series_uid: str, dest: Path, progress=None) -> RetrieveResult:  # type: ignore[no-untyped-def]
        assert (study_uid, series_uid) == (self.study_uid, self.series_uid)
        out = Path(dest) / study_uid / series_uid
        shutil.copytree(self.folder, out, dirs_exist_ok=True)
        n = len(list(out.glob("*.dcm")))
        return RetrieveResult(out, study_uid, series_uid, expected=n, received=n)

    def send(self, files: list[Path], progress=None) -> SendResult:  # type: ignore[no-untyped-def]
        self.received += [Path(f) for f in files]
        return SendResult(sent=len(files))

    def close(self) -> None:
        pass


def test_send_read_case_sends_both_concordant_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("highdicom")
    import pydicom

    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    monkeypatch.setenv("READERAPP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("READERAPP_SITE_CONFIG_DIR", str(tmp_path / "site-config"))
    monkeypatch.setenv("READERAPP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("READERAPP_DATABASE_URL", raising=False)
    ph = make_chest_phantom(SHAPE, SPACING, seed=5)
    raw = tmp_path / "raw" / "S1" / "baseline"
    write_synthetic_series(ph.volume, raw)
    first = pydicom.dcmread(sorted(raw.glob("*.dcm"))[0])
    sops = {str(pydicom.dcmread(f).SOPInstanceUID) for f in raw.glob("*.dcm")}
    pacs = FakePacs(raw, str(first.StudyInstanceUID), str(first.SeriesInstanceUID))

    svc = StudyService()  # the settings' default study
    svc.create_study(StudyConfig(name="send case"))
    svc.add_user(None, "admin", "admin", PW["admin"])
    admin = svc.login("admin", PW["admin"])
    for name, role in (("ra", "reader"), ("rb", "reader"), ("stat", "statistician")):
        svc.add_user(admin, name, role, PW[name])
    (code,) = svc.import_folder(admin, tmp_path / "raw")
    truth = ph.truth.astype(np.uint8)
    form = {"severity": dict.fromkeys(("RUL", "RML", "RLL", "LUL", "LLL"), 1), "fibrosis": None, "comment": ""}
    ids = [svc.submit_read(svc.login(r, PW[r]), code, truth, form, PW[r]).id for r in ("ra", "rb")]
    orig = svc.case_original(admin, code, need_final=True)
    assert orig.status == "concordant" and [r.read_id for r in orig.final_reads] == ids
    assert (orig.original_study_uid, orig.original_series_uid) == (pacs.study_uid, pacs.series_uid)

    monkeypatch.setattr("readerapp.commands.pacs._client", lambda name: pacs)
    monkeypatch.setattr("sys.stdin", io.StringIO(PW["stat"] + "\n"))
    rc = main(["pacs", "send-read", "--case", code, "--user", "stat", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "4 object(s)" in out
    assert sorted(p.parent.name + "/" + p.name for p in pacs.received) == [
        f"read{ids[0]}/seg.dcm", f"read{ids[0]}/sr.dcm", f"read{ids[1]}/seg.dcm", f"read{ids[1]}/sr.dcm"]
    assert not list((tmp_path / "data" / "pacs-staging").rglob("*.dcm"))  # staged original removed
    # (the files were written into a temporary folder that is gone; the audit holds their hashes)
    [rec] = [r for r in svc.audit_records(admin) if r.action == "export.pacs"]
    logged = json.loads(rec.new_json)
    assert logged["read_ids"] == ids and len(logged["objects"]) == 4
    assert svc.audit_verify().ok

    # --read-id sends one of the two; the objects reference the original series and instances
    monkeypatch.setattr("sys.stdin", io.StringIO(PW["stat"] + "\n"))
    pacs.received.clear()
    rc = main(["pacs", "send-read", "--case", code, "--user", "stat", "--read-id", str(ids[1]),
               "--out", str(tmp_path / "keep"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    seg = pydicom.dcmread(tmp_path / "keep" / "seg.dcm")
    sr = pydicom.dcmread(tmp_path / "keep" / "sr.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == pacs.series_uid
    assert {str(i.ReferencedSOPInstanceUID) for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence} == sops
    assert seg.SoftwareVersions == sr.SoftwareVersions == __version__
    assert np.array_equal(seg.pixel_array.reshape(-1, *SHAPE[1:]).max(axis=0) > 0,
                          (truth >= 1).any(axis=0))  # the lung reaches the SEG
