"""The staging folder a series is retrieved into, and the manifest that makes transfers resumable.

Each instance lands as ``<SOPInstanceUID>.dcm``, written to a temporary name, fsynced and renamed
(and the folder fsynced), so a file that exists is complete and on disk; an instance that is not
the one asked for (another SOP Instance UID, study or series) is refused, never counted. ``manifest.json`` records which instances the PACS listed for the
series; a later retrieve skips those already present and moves only the rest.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import PacsError
from ..fileio import atomic_write

MANIFEST = "manifest.json"
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def _safe_uid(uid: str) -> str:
    uid = uid.strip().rstrip("\x00")
    if not _UID.match(uid) or len(uid) > 64:
        raise PacsError(f"the PACS sent an invalid UID {uid!r}")
    return uid


@dataclass
class Staging:
    """One series' staging folder: ``<root>/<StudyInstanceUID>/<SeriesInstanceUID>/``."""

    folder: Path
    study_uid: str = ""
    series_uid: str = ""
    node: str = ""
    expected: list[str] = field(default_factory=list)

    @classmethod
    def for_series(cls, root: Path, study_uid: str, series_uid: str, node: str = "") -> Staging:
        folder = Path(root) / _safe_uid(study_uid) / _safe_uid(series_uid)
        folder.mkdir(parents=True, exist_ok=True)
        st = cls(folder=folder, study_uid=study_uid, series_uid=series_uid, node=node)
        old = st.read_manifest()
        if old:
            st.expected = list(old.get("expected", []))
        return st

    def path_for(self, sop_uid: str) -> Path:
        return self.folder / f"{_safe_uid(sop_uid)}.dcm"

    def present(self) -> set[str]:
        """SOP Instance UIDs whose files are complete in the folder."""
        return {p.stem for p in self.folder.glob("*.dcm") if _UID.match(p.stem)}

    def missing(self) -> list[str]:
        have = self.present()
        return [u for u in self.expected if u not in have]

    def check_instance(self, ds: Any, sop_uid: str | None = None) -> None:
        """Refuse an instance that is not the one asked for: its SOP Instance UID must be the
        requested one (when known) and listed for this series, its study and series UIDs this
        staging folder's. A retrieve is complete only when every listed instance is here."""
        got_sop = str(getattr(ds, "SOPInstanceUID", "") or "")
        got_study = str(getattr(ds, "StudyInstanceUID", "") or "")
        got_series = str(getattr(ds, "SeriesInstanceUID", "") or "")
        if sop_uid is not None and got_sop != sop_uid:
            raise PacsError(f"the PACS sent instance {got_sop or '(no UID)'} when {sop_uid} was asked for")
        if self.expected and got_sop not in self.expected:
            raise PacsError(f"the PACS sent instance {got_sop or '(no UID)'}, which series "
                            f"{self.series_uid} does not list")
        if self.study_uid and got_study != self.study_uid:
            raise PacsError(f"instance {got_sop} belongs to study {got_study}, not {self.study_uid}")
        if self.series_uid and got_series != self.series_uid:
            raise PacsError(f"instance {got_sop} belongs to series {got_series}, not {self.series_uid}")

    def write_bytes(self, sop_uid: str, data: bytes) -> Path:
        """Store one encoded instance atomically and durably (complete, or not there at all),
        after checking it is the instance asked for (:meth:`check_instance`)."""
        import pydicom

        try:
            ds = pydicom.dcmread(BytesIO(data), stop_before_pixels=True, force=True)
        except Exception as exc:
            raise PacsError(f"instance {sop_uid}: the PACS sent data that is not DICOM ({exc})") from exc
        self.check_instance(ds, sop_uid)
        path = self.path_for(sop_uid)

        def write(tmp: Path) -> None:
            tmp.write_bytes(data)

        return atomic_write(path, write, suffix=".part")

    def write_dataset(self, ds: Any, sop_uid: str | None = None) -> Path:
        """Store a pydicom Dataset (with its file meta) atomically and durably, after checking
        it is the instance asked for (``sop_uid``) of this series."""
        self.check_instance(ds, sop_uid)
        path = self.path_for(str(ds.SOPInstanceUID))

        def write(tmp: Path) -> None:
            ds.save_as(tmp, enforce_file_format=True)

        return atomic_write(path, write, suffix=".part")

    def read_manifest(self) -> dict[str, Any]:
        p = self.folder / MANIFEST
        if not p.is_file():
            return {}
        try:
            return dict(json.loads(p.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, OSError):
            return {}  # a torn manifest is rebuilt from the PACS's list

    def write_manifest(self, **extra: Any) -> None:
        have = self.present()
        data = {
            "readerapp_version": __version__,
            "node": self.node,
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "expected": self.expected,
            "present": len(have & set(self.expected)) if self.expected else len(have),
            "complete": bool(self.expected) and not self.missing(),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **extra,
        }
        tmp = self.folder / (MANIFEST + ".part")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.folder / MANIFEST)

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.dcm"))
