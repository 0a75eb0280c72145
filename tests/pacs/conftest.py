"""A real Orthanc PACS for the tests: started with a temporary configuration, holding the chest CT.

Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``) runs as a site would configure it: remote
access off, HTTP authentication on (user ``test``), the called AE title checked, and our own
storage SCP registered as a modality so C-MOVE can send to it. Everything binds free ports on
127.0.0.1 and lives in a temporary folder; the server is stopped when the session ends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from orthanc_kit import (
    ORTHANC_AET,
    ORTHANC_BIN,
    OUR_AET,
    PASSWORD,
    USER,
    LoadedPacs,
    OrthancServer,
    free_port,
    plugin_path,
)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    if not (Path(ORTHANC_BIN).is_file() or shutil.which("Orthanc")):
        pytest.skip(f"Orthanc is not installed ({ORTHANC_BIN}): apt-get install orthanc orthanc-dicomweb")
    plugin = plugin_path()
    if plugin is None:
        pytest.skip("Orthanc's DICOMweb plugin is not installed: apt-get install orthanc-dicomweb")
    binary = ORTHANC_BIN if Path(ORTHANC_BIN).is_file() else str(shutil.which("Orthanc"))
    folder = tmp_path_factory.mktemp("orthanc")
    srv = OrthancServer(free_port(), free_port(), free_port(), folder)
    config = {
        "Name": "ReaderAppTestPACS",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": srv.http_port,
        "DicomPort": srv.dicom_port,
        "DicomAet": ORTHANC_AET,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "Plugins": [plugin],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "DicomCheckCalledAet": True,
        "DicomModalities": {"readerapp": [OUR_AET, "127.0.0.1", srv.scp_port]},
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "DicomScpTimeout": 10,
        "StableAge": 1,
    }
    cfg = folder / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - closed below
    srv.process = subprocess.Popen([binary, str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        deadline = time.monotonic() + 20
        while True:
            if srv.process.poll() is not None:
                pytest.fail(f"Orthanc exited at start (code {srv.process.returncode}):\n{srv.log_tail()}")
            try:
                srv.rest("GET", "/system")
                break
            except Exception:
                if time.monotonic() > deadline:
                    pytest.fail(f"Orthanc did not answer within 20 s:\n{srv.log_tail()}")
                time.sleep(0.1)
        yield srv
    finally:
        srv.process.terminate()
        try:
            srv.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.process.kill()
            srv.process.wait()
        log.close()


@pytest.fixture(scope="session")
def pacs_with_ct(orthanc: OrthancServer, chest_ct_dir: Path) -> LoadedPacs:
    """Orthanc holding the real chest CT (uploaded through Orthanc's own REST API)."""
    import pydicom

    sop: dict[str, Path] = {}
    study = series = ""
    for f in sorted(chest_ct_dir.glob("*.dcm")):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        sop[str(ds.SOPInstanceUID)] = f
        study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        orthanc.rest("POST", "/instances", data=f.read_bytes())
    stats = orthanc.rest("GET", "/statistics")
    assert stats["CountInstances"] >= len(sop) == 64
    return LoadedPacs(orthanc, study, series, sop)


@pytest.fixture
def pacs_settings(pacs_with_ct: LoadedPacs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Program settings with both routes to the test PACS, in a private config folder."""
    from readerapp.settings import PacsNode, Settings, save_settings

    monkeypatch.setenv("READERAPP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("READERAPP_SITE_CONFIG_DIR", str(tmp_path / "site-config"))
    monkeypatch.setenv("READERAPP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("READERAPP_PACS_PASSWORD_WEB", PASSWORD)
    srv = pacs_with_ct.server
    s = Settings(
        local_ae_title=OUR_AET,
        storage_port=srv.scp_port,
        default_pacs="web",
        pacs={
            "web": PacsNode(kind="dicomweb", url=srv.dicomweb_url, username=USER, timeout_s=10),
            "dimse": PacsNode(kind="dimse", host="127.0.0.1", port=srv.dicom_port,
                              ae_title=ORTHANC_AET, timeout_s=10),
        },
    )
    save_settings(s)
    return s
