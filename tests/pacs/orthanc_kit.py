"""The test PACS's constants and handles, shared by the fixtures and the tests of tests/pacs."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

ORTHANC_BIN = os.environ.get("READERAPP_ORTHANC", "/usr/sbin/Orthanc")
PLUGIN_GLOBS = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so*", "/usr/lib/orthanc/plugins/*DicomWeb*.so*")
USER, PASSWORD = "test", "orthanc-test-secret"
ORTHANC_AET = "ORTHANC"
OUR_AET = "READERAPP"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OrthancServer:
    http_port: int
    dicom_port: int
    scp_port: int
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def rest(self, method: str, path: str, **kw):  # type: ignore[no-untyped-def]
        import requests

        r = requests.request(method, self.url + path, auth=(USER, PASSWORD), timeout=30, **kw)
        r.raise_for_status()
        return r.json() if r.content else None

    def log_tail(self) -> str:
        p = self.folder / "orthanc.log"
        return p.read_text(errors="replace")[-3000:] if p.is_file() else ""


def plugin_path() -> str | None:
    for pattern in PLUGIN_GLOBS:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    return None


@dataclass
class LoadedPacs:
    server: OrthancServer
    study_uid: str
    series_uid: str
    sop_uids: dict[str, Path]  # SOP Instance UID -> source file


def reader_labels(hu, *, extra: bool = False):  # type: ignore[no-untyped-def]
    """A plausible read of the chest CT: lung by threshold inside the body and two painted lesion
    boxes; ``extra`` also marks the lung of slices 10 to 40 as ground glass (a discordant read)."""
    import numpy as np

    lab = np.zeros(hu.shape, np.uint8)
    z, y, x = hu.shape
    core = (slice(4, z - 4), slice(y // 5, 4 * y // 5), slice(x // 8, 7 * x // 8))
    sub = hu[core]
    lab[core][(sub > -950) & (sub < -600)] = 1
    lab[20:26, 200:230, 120:150][lab[20:26, 200:230, 120:150] == 1] = 2
    lab[30:34, 220:240, 360:380][lab[30:34, 220:240, 360:380] == 1] = 3
    if extra:
        lab[10:40][lab[10:40] == 1] = 2
    return lab
