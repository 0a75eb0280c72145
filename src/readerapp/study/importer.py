"""Importing scans: copy each series de-identified under a random case code.

Input is a manifest CSV (``subject,visit,folder[,acquisition_date]``; folders relative to the
manifest) or a folder tree ``ROOT/SUBJECT/VISIT/...``. Every scan is checked (one CT series per
folder, loadable by the core's DICOM loader), copied de-identified into the study folder as
``cases/CODE/NNNNN.dcm`` with each file's SHA-256 in the database, and linked to its subject, visit
and date in the administrator/statistician-only link table. An import is all or nothing.
"""

from __future__ import annotations

import csv
import json
import secrets
import shutil
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from sqlalchemy import select

from . import audit
from .auth import Actor, Role, require
from .deid import UidMapper, deidentify, sha256_bytes
from .errors import ImportDataError
from .models import Case, CaseLink, Study
from .reading import ReadingMixin
from .status import CaseStatus

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed safely


def new_case_code() -> str:
    """A random code such as ``K7PQ-2XMD`` (40 bits from :mod:`secrets`)."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


@dataclass(frozen=True)
class ImportEntry:
    subject: str
    visit: str
    folder: Path
    acquisition_date: str | None = None


def parse_manifest(path: str | Path) -> list[ImportEntry]:
    """Read ``subject,visit,folder[,acquisition_date]`` rows; relative folders are taken from the
    manifest's own folder."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ImportDataError(f"{p}: cannot read the manifest ({exc.strerror})") from exc
    rows = list(csv.DictReader(text.splitlines()))
    need = {"subject", "visit", "folder"}
    if not rows or not need <= set(rows[0]):
        raise ImportDataError(f"{p}: a manifest needs a header with columns subject, visit, folder "
                              "(and optionally acquisition_date)")
    out = []
    for i, row in enumerate(rows, 2):
        subject, visit, folder = (row.get(k, "").strip() for k in ("subject", "visit", "folder"))
        if not subject or not visit or not folder:
            raise ImportDataError(f"{p}, line {i}: subject, visit and folder must all be given")
        f = Path(folder).expanduser()
        if not f.is_absolute():
            f = p.parent / f
        date = (row.get("acquisition_date") or "").strip() or None
        out.append(ImportEntry(subject, visit, f, date))
    return out


def scan_folder_tree(root: str | Path, visits: tuple[str, ...]) -> list[ImportEntry]:
    """``ROOT/SUBJECT/VISIT/`` folders; visit folder names must be the study's visit names."""
    r = Path(root)
    if not r.is_dir():
        raise ImportDataError(f"{r} is not a folder")
    out = []
    for subj in sorted(d for d in r.iterdir() if d.is_dir()):
        for vdir in sorted(d for d in subj.iterdir() if d.is_dir()):
            if vdir.name not in visits:
                raise ImportDataError(f"{vdir}: {vdir.name!r} is not one of the study's visits {list(visits)}")
            out.append(ImportEntry(subj.name, vdir.name, vdir))
    if not out:
        raise ImportDataError(f"{r}: no SUBJECT/VISIT folders found")
    return out


def _read_series(folder: Path):
    """The one CT series in ``folder`` (recursively), as pydicom datasets."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not folder.is_dir():
        raise ImportDataError(f"{folder} is not a folder")
    series: dict[str, list] = {}
    for f in sorted(folder.rglob("*")):
        if not f.is_file() or f.name.upper() == "DICOMDIR":
            continue
        try:
            ds = pydicom.dcmread(f)
        except (InvalidDicomError, OSError, ValueError):
            continue
        if "PixelData" not in ds or getattr(ds, "Modality", "") != "CT":
            continue
        series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    if not series:
        raise ImportDataError(f"{folder} holds no CT image files")
    if len(series) > 1:
        raise ImportDataError(
            f"{folder} holds {len(series)} CT series; give each scan its own folder (one series)"
        )
    return next(iter(series.values()))


def _header_date(ds) -> str:
    for kw in ("AcquisitionDate", "SeriesDate", "StudyDate", "ContentDate"):
        v = str(getattr(ds, kw, "") or "")
        if v:
            return v
    return ""


class ImportMixin(ReadingMixin):
    def import_manifest(self, actor: Actor, manifest: str | Path) -> list[str]:
        require(actor, Role.ADMIN, action="importing scans")
        return self.import_entries(actor, parse_manifest(manifest))

    def import_folder(self, actor: Actor, root: str | Path) -> list[str]:
        require(actor, Role.ADMIN, action="importing scans")
        return self.import_entries(actor, scan_folder_tree(root, self.config.visits))

    def import_entries(self, actor: Actor, entries: list[ImportEntry]) -> list[str]:
        """Import every entry or none; returns the new case codes (in entry order)."""
        require(actor, Role.ADMIN, action="importing scans")
        cfg = self.config
        seen = set()
        for e in entries:
            if e.visit not in cfg.visits:
                raise ImportDataError(f"{e.folder}: visit {e.visit!r} is not one of the study's visits {list(cfg.visits)}")
            if (e.subject, e.visit) in seen:
                raise ImportDataError(f"subject {e.subject!r} visit {e.visit!r} is listed twice")
            seen.add((e.subject, e.visit))
        with self.db.transaction() as s:
            secret = s.get(Study, 1).deid_secret  # type: ignore[union-attr]
            imported = {(row[0], row[1]) for row in s.execute(select(CaseLink.subject, CaseLink.visit))}
            for e in entries:
                if (e.subject, e.visit) in imported:
                    raise ImportDataError(f"subject {e.subject!r} visit {e.visit!r} was imported before")
            used = set(s.scalars(select(Case.code)))
        uids = UidMapper(secret)
        written: list[Path] = []
        prepared = []
        try:
            for e in entries:
                code = new_case_code()
                while code in used:
                    code = new_case_code()
                used.add(code)
                prepared.append(self._copy_deidentified(e, code, uids, written))
            with self.db.transaction() as s:
                for e, code, files, series_uid, study_uid, orig in prepared:
                    case = Case(
                        code=code,
                        folder=f"cases/{code}",
                        files_json=json.dumps(files, separators=(",", ":")),
                        series_uid=series_uid,
                        study_uid=study_uid,
                        needs_fibrosis=cfg.needs_fibrosis(e.visit),
                        status=CaseStatus.READING,
                        created_at=audit.utc_now(),
                    )
                    s.add(case)
                    s.flush()
                    link = CaseLink(
                        case_id=case.id,
                        subject=e.subject,
                        visit=e.visit,
                        acquisition_date=e.acquisition_date or orig["date"],
                        source=str(e.folder),
                        original_study_uid=orig["study_uid"],
                        original_series_uid=orig["series_uid"],
                    )
                    s.add(link)
                    self._audit_row(s, actor, "case.import", case)
                    self._audit_row(s, actor, "case.link", link)
        except BaseException:
            for d in written:
                shutil.rmtree(d, ignore_errors=True)
            raise
        return [p[1] for p in prepared]

    def _copy_deidentified(self, e: ImportEntry, code: str, uids: UidMapper, written: list[Path]):
        datasets = _read_series(e.folder)
        dest = self.storage / "cases" / code
        dest.mkdir(parents=True, exist_ok=False)
        written.append(dest)
        files = []
        first = datasets[0]
        orig = {
            "date": _header_date(first),
            "study_uid": str(first.StudyInstanceUID),
            "series_uid": str(first.SeriesInstanceUID),
        }
        for i, ds in enumerate(datasets, 1):
            out = deidentify(ds, code, uids)
            buf = BytesIO()
            out.save_as(buf, enforce_file_format=True)
            data = buf.getvalue()
            name = f"{i:05d}.dcm"
            (dest / name).write_bytes(data)
            files.append([name, sha256_bytes(data)])
        series_uid = uids(orig["series_uid"])
        study_uid = uids(orig["study_uid"])
        self._load_volume_folder(dest, source=e.folder)  # refuse what the core cannot measure
        return e, code, files, series_uid, study_uid, orig
