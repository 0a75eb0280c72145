"""The administrator's and statistician's way back to the site: original UIDs and final reads.

Sending a final read back to the site's PACS needs what readers must never see: the original
(pre-de-identification) StudyInstanceUID and SeriesInstanceUID, kept in the restricted link table
at import. :meth:`OriginalsMixin.case_originals` joins them to each case's final read(s) for the
administrator and the statistician only, and :meth:`OriginalsMixin.record_pacs_export` puts every
send in the audit trail as an export.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..fileio import sha256_file
from .auth import Actor, Role, require
from .errors import StudyError, StudyStateError
from .models import Adjudication, Case, CaseLink
from .reading import ReadingMixin, _latest_signed_by_case, final_read_rows


@dataclass(frozen=True)
class FinalRead:
    """One signed read behind a case's final value (the adjudicated read, or each of two
    concordant reads whose values the study combines)."""

    read_id: int
    kind: str  # "read" or "adjudication"
    version: int
    signed_at: str | None
    folder: Path
    labels_path: Path
    endpoints: dict[str, Any]


@dataclass(frozen=True)
class CaseOriginal:
    """A case as the site knows it: never shown to readers or adjudicators."""

    code: str
    subject: str
    visit: str
    acquisition_date: str
    original_study_uid: str
    original_series_uid: str
    #: reading, concordant, discordant, adjudicated
    status: str
    #: Empty until the case has a final value.
    final_reads: tuple[FinalRead, ...]


class OriginalsMixin(ReadingMixin):
    def case_originals(self, actor: Actor, codes: Collection[str] | None = None) -> list[CaseOriginal]:
        """Original UIDs and final reads per case (``codes``: only those), for the administrator
        and the statistician. Each final read's label map is checked against its stored hash."""
        require(actor, Role.ADMIN, Role.STATISTICIAN, action="the original UIDs of the cases")
        out = []
        with self.db.transaction() as s:
            q = select(CaseLink, Case).join(Case, Case.id == CaseLink.case_id).order_by(Case.code)
            if codes is not None:
                q = q.where(Case.code.in_(list(codes)))
            rows = s.execute(q).all()
            signed = _latest_signed_by_case(s, None if codes is None else [c.id for _, c in rows])
            adjs = {a.case_id: a for a in s.scalars(select(Adjudication))}
            for link, case in rows:
                finals = []
                for r in final_read_rows(s, case, signed, adjs):
                    self._check_labels(r)
                    folder = self.storage / r.folder
                    finals.append(FinalRead(
                        read_id=r.id, kind=r.kind, version=r.version, signed_at=r.signed_at,
                        folder=folder, labels_path=folder / "labels.nii.gz",
                        endpoints=json.loads(r.endpoints_json),
                    ))
                out.append(CaseOriginal(
                    code=case.code, subject=link.subject, visit=link.visit,
                    acquisition_date=link.acquisition_date, original_study_uid=link.original_study_uid,
                    original_series_uid=link.original_series_uid, status=case.status,
                    final_reads=tuple(finals),
                ))
        if codes is not None:
            missing = sorted(set(codes) - {o.code for o in out})
            if missing:
                raise StudyError(f"no case with the code(s) {', '.join(missing)}")
        return out

    def case_original(self, actor: Actor, code: str, *, need_final: bool = False) -> CaseOriginal:
        """One case's :class:`CaseOriginal`; ``need_final`` refuses a case without a final read."""
        [orig] = self.case_originals(actor, [code])
        if need_final and not orig.final_reads:
            raise StudyStateError(
                f"case {code} has no final read yet (status {orig.status}): both reads must be signed "
                "and concordant, or the case adjudicated"
            )
        return orig

    def record_pacs_export(self, actor: Actor, code: str, node: str, read_ids: Sequence[int],
                           files: Sequence[Path], referenced_series_uid: str) -> None:
        """Audit a send of final reads to a PACS as an export (who, what, where, file hashes)."""
        require(actor, Role.ADMIN, Role.STATISTICIAN, action="sending reads to a PACS")
        import pydicom

        sent = {}
        for p in files:
            ds = pydicom.dcmread(Path(p), stop_before_pixels=True)
            sent[f"{ds.Modality}:{ds.SOPInstanceUID}"] = sha256_file(p)
        with self.db.transaction() as s:
            self._case(s, code)
            self._audit_event(
                s, actor.user_id, actor.name, "export.pacs", "case", code,
                new={"node": node, "read_ids": list(read_ids), "objects": sent,
                     "referenced_series_uid": referenced_series_uid},
            )
