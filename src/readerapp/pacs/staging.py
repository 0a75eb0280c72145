"""The staging folder a series is retrieved into, and the manifest that makes transfers resumable.

Each instance lands as ``<SOPInstanceUID>.dcm``, written to a temporary name and renamed, so a
file that exists is complete. ``manifest.json`` records which instances the PACS listed for the
series; a later retrieve skips those already present and moves only the rest.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import PacsError

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

    def write_bytes(self, sop_uid: str, data: bytes) -> Path:
        """Store one encoded instance atomically (complete, or not there at all)."""
        path = self.path_for(sop_uid)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path

    def write_dataset(self, ds: Any) -> Path:
        """Store a pydicom Dataset (with its file meta) atomically."""
        path = self.path_for(str(ds.SOPInstanceUID))
        tmp = path.with_suffix(".part")
        ds.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, path)
        return path

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
