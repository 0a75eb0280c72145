"""Reading and adjudication: reads with versions, electronic signatures, concordance.

A read is a folder (label map, form, endpoints, provenance; :mod:`readerapp.readfile`) under
``reads/CODE/TOKEN`` in the study folder, plus a database row holding its path, the label map's
SHA-256, the form and the endpoints. A signed read is locked: changing it creates the next version
(with a reason) and the old one stays. When two readers have signed a case, the study's rules
decide concordance; a discordant case waits for an adjudicator, who selects one read or signs a
corrected one as the final read.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..endpoints import SegmentationSource
from ..errors import ReaderAppError
from ..fileio import sha256_file
from . import audit, rules
from .auth import Actor, Role, require
from .base import ServiceBase
from .errors import ImportDataError, StudyError, StudyPermissionError, StudyStateError
from .models import Adjudication, Case, Read, snapshot
from .status import ADJUDICATION_STATUSES, AdjudicationState, CaseStatus, ReadKind, ReadStatus

if TYPE_CHECKING:
    from ..volume import CTVolume

log = logging.getLogger(__name__)

LabelsArg = np.ndarray | str | Path

#: Recently opened case volumes kept in memory (a few full-size chest CTs).
VOLUME_CACHE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class ReadInfo:
    """One read version as its author (or the adjudicator) sees it; it never names a reader."""

    id: int
    case_code: str
    kind: ReadKind
    version: int
    status: ReadStatus
    created_at: str
    signed_at: str | None
    reason: str | None
    supersedes_id: int | None
    based_on_read_id: int | None
    folder: Path
    labels_path: Path
    labels_sha256: str
    form: dict[str, Any]
    endpoints: dict[str, Any]


@dataclass(frozen=True)
class AdjudicationView:
    """Both reads of a discordant case, side by side, with what differs."""

    code: str
    needs_fibrosis: bool
    reasons: tuple[str, ...]
    read_a: ReadInfo
    read_b: ReadInfo
    #: flat key -> (value in A, value in B) for every endpoint and form item that differs
    differences: dict[str, tuple[Any, Any]]


@dataclass(frozen=True)
class AdjudicationEntry:
    code: str
    status: AdjudicationState
    reasons: tuple[str, ...]


def _latest_signed(s: Session, case_id: int) -> list[Read]:
    """Each reader's latest signed read of a case (kind "read"), in the order the readers began
    reading it (so "reader 1" stays the same person when someone adds a version)."""
    return _latest_signed_by_case(s, [case_id]).get(case_id, [])


def _latest_signed_by_case(s: Session, case_ids: Collection[int] | None = None) -> dict[int, list[Read]]:
    """:func:`_latest_signed` for many cases (all if ``case_ids`` is None) in one query, so
    worklists and exports do not query once per case."""
    q = select(Read).where(Read.kind == ReadKind.READ).order_by(Read.id)
    if case_ids is not None:
        q = q.where(Read.case_id.in_(list(case_ids)))
    first: dict[tuple[int, int], int] = {}
    best: dict[int, dict[int, Read]] = {}
    for r in s.scalars(q):
        first.setdefault((r.case_id, r.reader_id), r.id)
        mine = best.setdefault(r.case_id, {})
        if r.status == ReadStatus.SIGNED and (r.reader_id not in mine or r.version > mine[r.reader_id].version):
            mine[r.reader_id] = r
    return {
        cid: sorted(by_reader.values(), key=lambda r: first[(r.case_id, r.reader_id)])
        for cid, by_reader in best.items()
    }


def _flat_view(r: Read) -> dict[str, Any]:
    return rules.flat_items(json.loads(r.endpoints_json), json.loads(r.form_json))



def final_read_rows(
    s: Session,
    case: Case,
    signed: dict[int, list[Read]] | None = None,
    adjudications: dict[int, Adjudication] | None = None,
) -> list[Read]:
    """The signed reads behind a case's final value: the adjudicated read, or both concordant
    reads; none while the case is being read or waits for adjudication. ``signed`` and
    ``adjudications`` (by case id), when given, are what a caller listing many cases loaded at
    once, so it does not query per case."""
    if case.status == CaseStatus.ADJUDICATED:
        adj = (adjudications.get(case.id) if adjudications is not None
               else s.scalar(select(Adjudication).where(Adjudication.case_id == case.id)))
        row = s.get(Read, adj.final_read_id) if adj is not None else None
        return [row] if row is not None else []
    if case.status == CaseStatus.CONCORDANT:
        reads = signed.get(case.id, []) if signed is not None else _latest_signed(s, case.id)
        return reads[:2]
    return []


class ReadingMixin(ServiceBase):
    _volumes: OrderedDict[str, CTVolume]

    # --- cases and volumes ----------------------------------------------------------------
    def _load_volume_folder(self, folder: Path, source: Path | None = None) -> CTVolume:
        from ..io.dicom import load_series

        try:
            vols = load_series([folder])
        except ReaderAppError as exc:
            where = source if source is not None else folder
            raise ImportDataError(f"{where}: the scan cannot be measured: {exc}") from exc
        if len(vols) != 1:
            raise ImportDataError(f"{source or folder}: expected one CT series, found {len(vols)}")
        return vols[0]

    def _case_volume(self, case: Case) -> CTVolume:
        """A case's volume (checked against its stored hashes on first load), kept in a small
        cache. Thread-safe: a study server loads different cases at once, each case once."""
        guard = self.__dict__.setdefault("_volumes_lock", threading.Lock())
        with guard:
            cache = self.__dict__.setdefault("_volumes", OrderedDict())
            if case.code in cache:
                cache.move_to_end(case.code)
                return cache[case.code]
            per_case = self.__dict__.setdefault("_volume_locks", {}).setdefault(case.code, threading.Lock())
        with per_case:
            with guard:
                if case.code in cache:
                    return cache[case.code]
            folder = self.storage / case.folder
            for name, digest in json.loads(case.files_json):
                p = folder / name
                if not p.is_file() or sha256_file(p) != digest:
                    raise StudyError(f"case {case.code}: stored file {p} is missing or changed (checksum)")
            vol = self._load_volume_folder(folder)
            with guard:
                cache[case.code] = vol
                while len(cache) > 1 and sum(v.hu.nbytes for v in cache.values()) > VOLUME_CACHE_BYTES:
                    cache.popitem(last=False)
            return vol

    def _visible_case(self, s: Session, actor: Actor, code: str) -> Case:
        case = self._case(s, code)
        if actor.role is Role.ADJUDICATOR and case.status not in ADJUDICATION_STATUSES:
            raise StudyPermissionError(f"case {code} is not waiting for adjudication")
        return case

    def case_folder(self, actor: Actor, code: str) -> Path:
        """The de-identified DICOM folder of a case, to open in the workstation."""
        require(actor, Role.READER, Role.ADJUDICATOR, action="opening a case")
        with self.db.transaction() as s:
            return self.storage / self._visible_case(s, actor, code).folder

    def case_volume(self, actor: Actor, code: str) -> CTVolume:
        require(actor, Role.READER, Role.ADJUDICATOR, action="opening a case")
        with self.db.transaction() as s:
            case = self._visible_case(s, actor, code)
        return self._case_volume(case)

    # --- reads ------------------------------------------------------------------------------
    def _info(self, s: Session, r: Read) -> ReadInfo:
        case = s.get(Case, r.case_id)
        folder = self.storage / r.folder
        return ReadInfo(
            id=r.id, case_code=case.code if case else "", kind=ReadKind(r.kind), version=r.version,
            status=ReadStatus(r.status), created_at=r.created_at, signed_at=r.signed_at, reason=r.reason,
            supersedes_id=r.supersedes_id, based_on_read_id=r.based_on_read_id, folder=folder,
            labels_path=folder / "labels.nii.gz", labels_sha256=r.labels_sha256,
            form=json.loads(r.form_json), endpoints=json.loads(r.endpoints_json),
        )

    def _write_read_folder(self, case: Case, labels: LabelsArg, form: Any,
                           source: SegmentationSource | str,
                           extra: dict[str, Any],
                           measurements: list[Any] | None = None) -> tuple[str, str, dict, dict]:
        """Measure and save a read folder; returns (relative folder, labels sha, form, endpoints)."""
        from ..analysis import measure
        from ..forms import ReadForm
        from ..io.labelmap import read_labelmap
        from ..readfile import save_read

        vol = self._case_volume(case)
        rf = form if isinstance(form, ReadForm) else (
            ReadForm.from_dict(form) if form is not None else ReadForm.blank(case.needs_fibrosis))
        if not isinstance(labels, np.ndarray):
            labels = read_labelmap(Path(labels), vol)
        result = measure(vol, labels, backend="numpy", source=source)
        rel = f"reads/{case.code}/{secrets.token_hex(6)}"
        folder = self.db.make_dir(self.storage / rel)
        save_read(folder, volume=vol, labels=result.labels, form=rf, endpoints=result,
                  source=source, extra=extra, measurements=measurements)
        meta = json.loads((folder / "read.json").read_text(encoding="utf-8"))
        return rel, meta["labels_sha256"], rf.to_dict(), result.endpoints.to_dict()

    def save_read(
        self,
        actor: Actor,
        code: str,
        labels: LabelsArg,
        form: Any = None,
        *,
        source: SegmentationSource | str = SegmentationSource.CORRECTED,
        reason: str | None = None,
        measurements: list[Any] | None = None,
    ) -> ReadInfo:
        """Save (or replace) the reader's draft; after signing, a new version (reason needed).
        ``measurements`` (rulers and ROIs, :mod:`readerapp.measurements`) go into its folder."""
        require(actor, Role.READER, action="saving a read")
        if not isinstance(labels, np.ndarray) and Path(labels).resolve().is_relative_to(
                (self.storage / "reads").resolve()):
            raise StudyPermissionError(
                f"{labels} is a read stored in the study: submit a label map of your own, "
                "not a read already in the study")
        with self.db.transaction() as s:
            case = self._case(s, code)
            mine = list(s.scalars(select(Read).where(
                Read.case_id == case.id, Read.reader_id == actor.user_id, Read.kind == ReadKind.READ)))
            others = {r.reader_id for r in s.scalars(select(Read).where(
                Read.case_id == case.id, Read.kind == ReadKind.READ, Read.reader_id != actor.user_id))}
            if not mine and len(others) >= 2:
                raise StudyStateError(f"case {code} already has its two readers")
            latest = max(mine, key=lambda r: r.version) if mine else None
            if latest is not None and latest.status == ReadStatus.SIGNED and not (reason or "").strip():
                raise StudyStateError(
                    f"your read of case {code} is signed (version {latest.version}); a change makes "
                    "version {} and needs a reason".format(latest.version + 1)
                )
        version = 1 if latest is None else (latest.version if latest.status == ReadStatus.DRAFT else latest.version + 1)
        rel, sha, form_d, endpoints = self._write_read_folder(
            case, labels, form, source, {"case": code, "version": version}, measurements)
        old_folder = None
        try:
            with self.db.transaction() as s:
                if latest is not None and latest.status == ReadStatus.DRAFT:
                    row = s.get(Read, latest.id)
                    assert row is not None
                    if row.status != ReadStatus.DRAFT:
                        raise StudyStateError(f"read {row.id} was signed meanwhile; save again with a reason")
                    old = snapshot(row)
                    old_folder = row.folder
                    row.folder, row.labels_sha256 = rel, sha
                    row.form_json = audit.canonical(form_d)
                    row.endpoints_json = audit.canonical(endpoints)
                    row.reason = reason or row.reason
                    self._audit_row(s, actor, "read.update", row, old=old, reason=reason or "")
                else:
                    row = Read(
                        case_id=case.id, reader_id=actor.user_id, kind=ReadKind.READ, version=version,
                        status=ReadStatus.DRAFT, folder=rel, labels_sha256=sha,
                        form_json=audit.canonical(form_d), endpoints_json=audit.canonical(endpoints),
                        created_at=audit.utc_now(), reason=reason or None,
                        supersedes_id=None if latest is None else latest.id,
                    )
                    s.add(row)
                    self._audit_row(s, actor, "read.create" if latest is None else "read.new_version",
                                    row, reason=reason or "")
                info = self._info(s, row)
        except BaseException:
            shutil.rmtree(self.storage / rel, ignore_errors=True)
            raise
        if old_folder:
            shutil.rmtree(self.storage / old_folder, ignore_errors=True)
        return info

    def sign_read(self, actor: Actor, read_id: int, password: str) -> ReadInfo:
        """Electronic signature: the password again, the study's stated meaning, then locked."""
        require(actor, Role.READER, action="signing a read")
        self.reauthenticate(actor, password)
        from ..forms import ReadForm

        with self.db.transaction() as s:
            row = s.get(Read, read_id)
            if row is None or row.reader_id != actor.user_id or row.kind != ReadKind.READ:
                raise StudyPermissionError(f"read {read_id} is not one of your reads")
            if row.status != ReadStatus.DRAFT:
                raise StudyStateError(f"read {read_id} is already signed; change it as a new version with a reason")
            # Lock the case row (PostgreSQL; SQLite serialises anyway) so two readers signing the
            # same case at once evaluate concordance one after the other, each seeing the other.
            case = s.get(Case, row.case_id, with_for_update=True)
            assert case is not None
            missing = ReadForm.from_dict(json.loads(row.form_json)).missing(case.needs_fibrosis)
            if missing:
                raise StudyStateError(
                    f"case {case.code}: the form is incomplete, answer first: {', '.join(missing[:8])}"
                    + (" ..." if len(missing) > 8 else "")
                )
            self._check_labels(row)
            old = snapshot(row)
            row.status = ReadStatus.SIGNED
            row.signed_at = audit.utc_now()
            row.signature_meaning = self.config.signature_meaning
            self._audit_row(s, actor, "read.sign", row, old=old, reason=row.signature_meaning)
            self._evaluate_case(s, actor, case)
            return self._info(s, row)

    def submit_read(self, actor: Actor, code: str, labels: LabelsArg, form: Any,
                    password: str, *, reason: str | None = None,
                    source: SegmentationSource | str = SegmentationSource.CORRECTED) -> ReadInfo:
        """Save and sign in one step (reads made elsewhere, ``readerapp read submit``)."""
        info = self.save_read(actor, code, labels, form, source=source, reason=reason)
        return self.sign_read(actor, info.id, password)

    def _check_labels(self, row: Read) -> None:
        p = self.storage / row.folder / "labels.nii.gz"
        if not p.is_file() or sha256_file(p) != row.labels_sha256:
            raise StudyError(f"read {row.id}: its label map {p} is missing or changed (checksum)")

    def get_read(self, actor: Actor, read_id: int) -> ReadInfo:
        """A read, if the actor may see it: readers their own only; adjudicators the reads of
        cases waiting for (or done by) their adjudication."""
        require(actor, Role.READER, Role.ADJUDICATOR, action="opening a read")
        with self.db.transaction() as s:
            row = s.get(Read, read_id)
            if row is None:
                raise StudyPermissionError(f"read {read_id} is not yours to open")
            if actor.role is Role.READER and row.reader_id != actor.user_id:
                raise StudyPermissionError(f"read {read_id} is not yours to open")
            if actor.role is Role.ADJUDICATOR:
                case = s.get(Case, row.case_id)
                readers = {r.reader_id for r in _latest_signed(s, row.case_id)}
                if case is None or case.status not in ADJUDICATION_STATUSES or actor.user_id in readers:
                    raise StudyPermissionError(f"read {read_id} is not waiting for your adjudication")
            return self._info(s, row)

    def my_reads(self, actor: Actor, code: str) -> list[ReadInfo]:
        """Every version of the reader's own reads of a case, oldest first."""
        require(actor, Role.READER, action="listing your reads")
        with self.db.transaction() as s:
            case = self._case(s, code)
            rows = s.scalars(select(Read).where(Read.case_id == case.id, Read.reader_id == actor.user_id)
                             .order_by(Read.version))
            return [self._info(s, r) for r in rows]

    def _evaluate_case(self, s: Session, actor: Actor, case: Case) -> None:
        if case.status == CaseStatus.ADJUDICATED:
            return
        reads = _latest_signed(s, case.id)
        status, why = CaseStatus.READING, ""
        if len(reads) >= 2:
            a, b = reads[:2]
            c = rules.compare(self.config, json.loads(a.endpoints_json), json.loads(a.form_json),
                              json.loads(b.endpoints_json), json.loads(b.form_json), case.needs_fibrosis)
            status = CaseStatus.DISCORDANT if c.discordant else CaseStatus.CONCORDANT
            why = "; ".join(c.reasons) or "within the study's thresholds"
        if status != case.status:
            old = snapshot(case)
            case.status = status
            self._audit_row(s, actor, "case.status", case, old=old, reason=why)

    # --- adjudication ---------------------------------------------------------------------
    def adjudication_worklist(self, actor: Actor) -> list[AdjudicationEntry]:
        require(actor, Role.ADJUDICATOR, action="the adjudication worklist")
        out = []
        with self.db.transaction() as s:
            cases = list(s.scalars(select(Case).where(Case.status.in_(ADJUDICATION_STATUSES))
                                   .order_by(Case.code)))
            signed = _latest_signed_by_case(s, [c.id for c in cases])
            for case in cases:
                reads = signed.get(case.id, [])
                if actor.user_id in {r.reader_id for r in reads} or len(reads) < 2:
                    continue
                c = rules.compare(self.config, json.loads(reads[0].endpoints_json), json.loads(reads[0].form_json),
                                  json.loads(reads[1].endpoints_json), json.loads(reads[1].form_json),
                                  case.needs_fibrosis)
                out.append(AdjudicationEntry(case.code, AdjudicationState.PENDING if case.status == CaseStatus.DISCORDANT
                                             else AdjudicationState.ADJUDICATED,
                                             c.reasons))
        return out

    def adjudication_view(self, actor: Actor, code: str) -> AdjudicationView:
        require(actor, Role.ADJUDICATOR, action="adjudicating")
        with self.db.transaction() as s:
            case = self._visible_case(s, actor, code)
            reads = _latest_signed(s, case.id)
            if len(reads) < 2:
                raise StudyStateError(f"case {code} does not have two signed reads")
            if actor.user_id in {r.reader_id for r in reads}:
                raise StudyPermissionError(f"you read case {code} yourself and cannot adjudicate it")
            a, b = reads[:2]
            c = rules.compare(self.config, json.loads(a.endpoints_json), json.loads(a.form_json),
                              json.loads(b.endpoints_json), json.loads(b.form_json), case.needs_fibrosis)
            return AdjudicationView(
                code=code, needs_fibrosis=case.needs_fibrosis, reasons=c.reasons,
                read_a=self._info(s, a), read_b=self._info(s, b),
                differences=rules.differences(_flat_view(a), _flat_view(b)),
            )

    def adjudicate(
        self,
        actor: Actor,
        code: str,
        password: str,
        reason: str,
        *,
        choose: int | None = None,
        based_on: int | None = None,
        labels: LabelsArg | None = None,
        form: Any = None,
    ) -> ReadInfo:
        """Sign the final read of a discordant case: one of the two reads (``choose``), or a
        correction of one (``based_on`` with new ``labels`` and/or ``form``)."""
        require(actor, Role.ADJUDICATOR, action="adjudicating")
        if not reason.strip():
            raise StudyError("an adjudication needs a reason")
        if (choose is None) == (based_on is None):
            raise StudyError("adjudicate by choosing one read, or by correcting one (not both)")
        view = self.adjudication_view(actor, code)
        pair = {view.read_a.id, view.read_b.id}
        pick = choose if choose is not None else based_on
        if pick not in pair:
            raise StudyError(f"read {pick} is not one of case {code}'s two reads ({sorted(pair)})")
        self.reauthenticate(actor, password)
        new_rel = None
        if based_on is not None:
            base = view.read_a if based_on == view.read_a.id else view.read_b
            with self.db.transaction() as s:
                case = self._case(s, code)
            new_rel, sha, form_d, endpoints = self._write_read_folder(
                case, labels if labels is not None else base.labels_path,
                form if form is not None else base.form, SegmentationSource.CORRECTED,
                {"case": code, "adjudication_of": sorted(pair)})
        meaning = self.config.adjudication_meaning
        try:
            with self.db.transaction() as s:
                case = self._case(s, code)
                s.refresh(case, with_for_update=True)
                if case.status != CaseStatus.DISCORDANT:
                    raise StudyStateError(f"case {code} is {case.status}, not waiting for adjudication")
                final_id = choose
                if new_rel is not None:
                    row = Read(case_id=case.id, reader_id=actor.user_id, kind=ReadKind.ADJUDICATION, version=1,
                               status=ReadStatus.SIGNED, folder=new_rel, labels_sha256=sha,
                               form_json=audit.canonical(form_d), endpoints_json=audit.canonical(endpoints),
                               created_at=audit.utc_now(), signed_at=audit.utc_now(),
                               signature_meaning=meaning, reason=reason, based_on_read_id=based_on)
                    s.add(row)
                    self._audit_row(s, actor, "read.adjudication", row, reason=reason)
                    final_id = row.id
                adj = Adjudication(case_id=case.id, adjudicator_id=actor.user_id, final_read_id=final_id,
                                   chosen_read_id=choose, reason=reason, signed_at=audit.utc_now(),
                                   signature_meaning=meaning)
                s.add(adj)
                self._audit_row(s, actor, "adjudication.sign", adj, reason=reason)
                old = snapshot(case)
                case.status = CaseStatus.ADJUDICATED
                self._audit_row(s, actor, "case.status", case, old=old, reason=reason)
                final = s.get(Read, final_id)
                assert final is not None
                return self._info(s, final)
        except BaseException:
            if new_rel:
                shutil.rmtree(self.storage / new_rel, ignore_errors=True)
            raise
