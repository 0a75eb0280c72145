"""The statistician's side: the randomization list and the unblinded export.

Only here are reads joined to subject, visit and arm. The CSV holds one row per subject and visit:
the final values (the mean of two concordant reads, or the adjudicated read), each reader's values,
whether the scan was adjudicated, and for every visit after baseline the change from baseline of
every endpoint (percentages change in percentage points), ``null_reasons`` (why a value behind
the row is empty, for example a percentage of a zero lung volume), and the program's version in a
last column ``software_version``. Numbers are written with six decimals,
so a value recomputed from the label maps matches to the last printed digit. Per final read, a
DICOM SEG and a TID 1500 SR go to ``dicom/SUBJECT/VISIT/``. Every export is in the audit trail.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from .. import __version__
from ..fileio import sha256_file
from . import audit, rules
from .auth import Actor, Role, require
from .errors import ImportDataError, StudyError
from .models import Adjudication, Case, CaseLink, Randomization, Read, User, snapshot
from .reading import ReadingMixin, _latest_signed_by_case, final_read_rows
from .status import CaseStatus

ENDPOINTS_CSV = "endpoints.csv"


@dataclass
class ExportResult:
    folder: Path
    csv_path: Path
    rows: int
    dicom_files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def fmt(v: Any) -> str:
    """CSV cell: empty for missing, 0/1 for yes/no, integers as such, floats with 6 decimals.

    A float that is not finite is refused: the endpoints never hold one (null with a reason
    instead), so meeting one here is a bug to report, not a cell to write."""
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"refusing to export a non-finite number ({v!r})")
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.6f}"
    return str(v)


def read_values(r: Read, needs_fibrosis: bool) -> dict[str, Any]:
    """One read's numeric values: endpoints, severity total and (Day-90) fibrosis presence."""
    vals: dict[str, Any] = dict(rules.flatten_endpoints(json.loads(r.endpoints_json)))
    summ = rules.form_summary(json.loads(r.form_json))
    vals["severity_total"] = summ["severity_total"]
    if needs_fibrosis and summ["fibrosis"] is not None:
        for k, v in summ["fibrosis"].items():
            vals[f"fibrosis.{k}"] = 1 if v else 0
    return vals


def value_keys() -> list[str]:
    return [*rules.endpoint_keys(), "severity_total", *(f"fibrosis.{k}" for k in rules.FEATURE_KEYS)]


def change_keys() -> list[str]:
    return [*rules.endpoint_keys(), "severity_total"]


class ExportMixin(ReadingMixin):
    def import_randomization(self, actor: Actor, path: str | os.PathLike[str]) -> int:
        """Load ``subject,arm`` rows (replacing a subject's earlier arm, audited)."""
        require(actor, Role.STATISTICIAN, action="importing the randomization list")
        p = Path(path)
        try:
            rows = list(csv.DictReader(p.read_text(encoding="utf-8-sig").splitlines()))
        except OSError as exc:
            raise ImportDataError(f"{p}: cannot read the randomization list ({exc.strerror})") from exc
        if not rows or not {"subject", "arm"} <= set(rows[0]):
            raise ImportDataError(f"{p}: the randomization list needs columns subject, arm")
        seen: set[str] = set()
        for i, row in enumerate(rows, 2):
            subj, arm = (row.get("subject") or "").strip(), (row.get("arm") or "").strip()
            if not subj or not arm:
                raise ImportDataError(f"{p}, line {i}: subject and arm must both be given")
            if subj in seen:
                raise ImportDataError(f"{p}, line {i}: subject {subj!r} is listed twice")
            seen.add(subj)
        with self.db.transaction() as s:
            for row in rows:
                subj, arm = row["subject"].strip(), row["arm"].strip()
                cur = s.get(Randomization, subj)
                if cur is None:
                    cur = Randomization(subject=subj, arm=arm, imported_at=audit.utc_now())
                    s.add(cur)
                    self._audit_row(s, actor, "randomization.import", cur)
                elif cur.arm != arm:
                    old = snapshot(cur)
                    cur.arm, cur.imported_at = arm, audit.utc_now()
                    self._audit_row(s, actor, "randomization.change", cur, old=old,
                                    reason=f"re-imported from {p.name}")
        return len(rows)

    def case_links(self, actor: Actor) -> list[dict[str, str]]:
        """Case code to subject, visit and date (administrator and statistician only)."""
        require(actor, Role.ADMIN, Role.STATISTICIAN, action="the case link table")
        with self.db.transaction() as s:
            rows = [
                {"code": c.code, "subject": lk.subject, "visit": lk.visit, "acquisition_date": lk.acquisition_date}
                for lk, c in s.execute(select(CaseLink, Case).join(Case, Case.id == CaseLink.case_id))
            ]
            # The unblinding key leaving the database is an export: audited like one.
            self._audit_event(s, actor.user_id, actor.name, "export.links", "case_link", "*",
                              new={"rows": len(rows)})
            return rows

    def export(
        self,
        actor: Actor,
        out_dir: str | os.PathLike[str],
        randomization: str | os.PathLike[str] | None = None,
        *,
        dicom: bool = True,
        dicom_cases: Collection[str] | None = None,
    ) -> ExportResult:
        """Write endpoints.csv (and SEG + SR per final read) into ``out_dir``; audited.

        ``dicom_cases`` limits the SEG/SR objects to those case codes (all final reads if None).
        """
        require(actor, Role.STATISTICIAN, action="exporting")
        if randomization is not None:
            self.import_randomization(actor, randomization)
        cfg = self.config
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        vindex = {v: i for i, v in enumerate(cfg.visits)}
        rows: list[dict[str, Any]] = []
        finals: list[tuple[CaseLink, Case, list[Read]]] = []
        with self.db.transaction() as s:
            names = {u.id: u.name for u in s.scalars(select(User))}
            arms = {r.subject: r.arm for r in s.scalars(select(Randomization))}
            signed = _latest_signed_by_case(s)
            adjs = {a.case_id: a for a in s.scalars(select(Adjudication))}
            links = sorted(
                s.execute(select(CaseLink, Case).join(Case, Case.id == CaseLink.case_id)).all(),
                key=lambda lc: (lc[0].subject, vindex.get(lc[0].visit, 99)),
            )
            for link, case in links:
                reads = signed.get(case.id, [])[:2]
                adj = adjs.get(case.id)
                vals = [read_values(r, case.needs_fibrosis) for r in reads]
                row: dict[str, Any] = {
                    "subject": link.subject, "arm": arms.get(link.subject, ""), "visit": link.visit,
                    "case_code": case.code, "acquisition_date": link.acquisition_date,
                    "status": case.status, "adjudicated": case.status == CaseStatus.ADJUDICATED,
                }
                why: dict[str, str] = {}
                for i in range(2):
                    r = reads[i] if i < len(reads) else None
                    row[f"reader{i + 1}"] = names.get(r.reader_id, "") if r else ""
                    row[f"reader{i + 1}_read_id"] = r.id if r else None
                    row[f"reader{i + 1}_version"] = r.version if r else None
                final: dict[str, Any] = {}
                final_reads = final_read_rows(s, case, signed, adjs)
                if case.status == CaseStatus.ADJUDICATED and adj is not None and final_reads:
                    fr = final_reads[0]
                    final = read_values(fr, case.needs_fibrosis)
                    row["final_source"] = f"adjudication of read {adj.chosen_read_id}" if adj.chosen_read_id \
                        else f"adjudicator's corrected read {fr.id}"
                    row["adjudicator"] = names.get(adj.adjudicator_id, "")
                    row["final_read_id"] = fr.id
                elif case.status == CaseStatus.CONCORDANT:
                    keys = set(vals[0]) | set(vals[1])
                    final = {k: rules.combine([v.get(k) for v in vals], cfg.combine) for k in keys}
                    row["final_source"] = f"{cfg.combine} of reads {reads[0].id} and {reads[1].id}"
                else:
                    row["final_source"] = "no final value yet (" + case.status + ")"
                for r in [*reads, *final_reads]:
                    for k, reason in rules.null_reasons(json.loads(r.endpoints_json)).items():
                        why.setdefault(k, reason)
                row["null_reasons"] = "; ".join(f"{k}: {reason}" for k, reason in why.items())
                for k in value_keys():
                    row[k] = final.get(k)
                    for i in range(2):
                        row[f"{k}.reader{i + 1}"] = vals[i].get(k) if i < len(vals) else None
                rows.append(row)
                if final_reads:
                    finals.append((link, case, final_reads))
        # changes from baseline: value at the visit minus value at baseline (per subject)
        base = {r["subject"]: r for r in rows if r["visit"] == cfg.baseline}
        for row in rows:
            b = base.get(row["subject"])
            for k in change_keys():
                v = row.get(k)
                bv = b.get(k) if b is not None else None
                row[f"{k}.change"] = (
                    v - bv if row["visit"] != cfg.baseline and v is not None and bv is not None else None
                )
        columns = [
            "subject", "arm", "visit", "case_code", "acquisition_date", "status", "adjudicated",
            "final_source", "final_read_id", "adjudicator",
            "reader1", "reader1_read_id", "reader1_version", "reader2", "reader2_read_id", "reader2_version",
        ]
        for k in value_keys():
            columns += [k, f"{k}.reader1", f"{k}.reader2"]
            if k in change_keys():
                columns.append(f"{k}.change")
        columns.append("null_reasons")  # why an endpoint cell is empty: never a silent blank
        columns.append("software_version")  # every output carries the program's version
        for row in rows:
            row["software_version"] = __version__
        csv_path = out / ENDPOINTS_CSV
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(columns)
            for row in rows:
                w.writerow([fmt(row.get(c)) for c in columns])
        result = ExportResult(folder=out, csv_path=csv_path, rows=len(rows))
        result.problems += [f"subject {subj} has no arm in the randomization list"
                            for subj in sorted({r["subject"] for r in rows if not r["arm"]})]
        if dicom:
            for link, case, reads in finals:
                if dicom_cases is None or case.code in dicom_cases:
                    self._export_dicom(link, case, reads, out, result)
        files = {str(p.relative_to(out)): sha256_file(p) for p in [csv_path, *result.dicom_files]}
        with self.db.transaction() as s:
            self._audit_event(s, actor.user_id, actor.name, "export", "export", out.name,
                              new={"rows": len(rows), "files": files, "problems": result.problems})
        return result

    def _export_dicom(self, link: CaseLink, case: Case, reads: list[Read], out: Path,
                      result: ExportResult) -> None:
        from ..readfile import load_read
        from .dicom_export import load_source_images, write_seg, write_sr

        dest = out / "dicom" / _safe(link.subject) / _safe(link.visit)
        dest.mkdir(parents=True, exist_ok=True)
        try:
            vol = self._case_volume(case)
            sources = load_source_images(self.storage / case.folder)
            for r in reads:
                self._check_labels(r)
                rd = load_read(self.storage / r.folder, vol)
                assert rd.labels is not None
                seg_path = dest / f"SEG_read{r.id}.dcm"
                sr_path = dest / f"SR_read{r.id}.dcm"
                seg = write_seg(sources, vol, rd.labels, seg_path, software_version=__version__)
                write_sr(sources, seg, json.loads(r.endpoints_json), sr_path, software_version=__version__)
                result.dicom_files += [seg_path, sr_path]
        except (StudyError, ValueError, AttributeError, KeyError) as exc:
            result.problems.append(f"case {case.code}: no DICOM SEG/SR ({exc})")


def _safe(name: str) -> str:
    """A subject or visit (from the import manifest) as one folder name: never a path separator,
    and never "." or ".." (which would put the export outside ``out/dicom``)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return safe if safe.strip(".") else "_" * max(len(name), 1)
