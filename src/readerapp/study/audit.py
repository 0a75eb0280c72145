"""The audit trail: every create, change, sign, import and export, chained by SHA-256.

Each record holds who, when, what (entity and key), the old and new row snapshots and why. Its hash
is SHA-256 of the previous record's hash followed by the record's canonical JSON, so an edit,
insertion or deletion anywhere breaks the chain. :func:`verify` also replays the trail: the latest
snapshot of every audited row must equal the row in the database, which catches changes made to
the data tables themselves behind the program's back (raw SQL), not only to the trail.

Appending first updates the single ``audit_head`` row, which takes a row lock (PostgreSQL) or the
write lock (SQLite, whose transactions start with BEGIN IMMEDIATE): concurrent writers queue there,
so the chain never forks.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import AUDITED, AuditHead, AuditLog, Base, row_key, snapshot

GENESIS = "0" * 64


def utc_now() -> str:
    """Timestamps everywhere in the study: ISO-8601 UTC, microseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _content(rec: AuditLog) -> str:
    return canonical(
        {
            "seq": rec.seq,
            "ts": rec.ts,
            "user_id": rec.user_id,
            "user_name": rec.user_name,
            "action": rec.action,
            "entity": rec.entity,
            "entity_id": rec.entity_id,
            "old": rec.old_json,
            "new": rec.new_json,
            "reason": rec.reason,
        }
    )


def record_hash(prev_hash: str, rec: AuditLog) -> str:
    return hashlib.sha256((prev_hash + _content(rec)).encode("utf-8")).hexdigest()


def append(
    session: Session,
    *,
    user_id: int | None,
    user_name: str,
    action: str,
    entity: str,
    entity_id: str,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditLog:
    """Add one record at the end of the chain, inside the caller's transaction."""
    session.flush()  # rows being audited get their keys first
    seq, prev = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash)
    ).one()
    rec = AuditLog(
        seq=int(seq),
        ts=utc_now(),
        user_id=user_id,
        user_name=user_name,
        action=action,
        entity=entity,
        entity_id=entity_id,
        old_json=None if old is None else canonical(old),
        new_json=None if new is None else canonical(new),
        reason=reason or "",
        prev_hash=prev,
    )
    rec.hash = record_hash(prev, rec)
    session.add(rec)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=rec.hash))
    return rec


def append_row(
    session: Session,
    actor_id: int | None,
    actor_name: str,
    action: str,
    obj: Base,
    *,
    old: dict[str, Any] | None = None,
    reason: str = "",
    deleted: bool = False,
) -> AuditLog:
    """Audit a created or changed (or deleted) row with its full snapshot."""
    session.flush()
    return append(
        session,
        user_id=actor_id,
        user_name=actor_name,
        action=action,
        entity=obj.__tablename__,
        entity_id=row_key(obj),
        old=old,
        new=None if deleted else snapshot(obj),
        reason=reason,
    )


@dataclass
class VerifyReport:
    records: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, max_problems: int = 200) -> VerifyReport:
    """Check the chain and replay it against the live rows; list every discrepancy found."""
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    latest: dict[tuple[str, str], str | None] = {}
    n = 0
    for rec in session.scalars(select(AuditLog).order_by(AuditLog.seq)):
        n += 1
        if rec.seq != expected_seq:
            problems.append(f"audit record(s) {expected_seq}..{rec.seq - 1} are missing (deleted)")
        if rec.prev_hash != prev:
            problems.append(f"audit record {rec.seq}: does not follow record {rec.seq - 1} (chain broken)")
        if record_hash(rec.prev_hash, rec) != rec.hash:
            problems.append(f"audit record {rec.seq} ({rec.action} {rec.entity} {rec.entity_id}) was altered")
        prev = rec.hash
        expected_seq = rec.seq + 1
        if rec.entity in AUDITED:
            latest[(rec.entity, rec.entity_id)] = rec.new_json
    head = session.get(AuditHead, 1)
    if head is None:
        problems.append("the audit chain's head row is missing")
    elif head.seq != expected_seq - 1 or head.hash != prev:
        problems.append(
            f"the audit trail ends at record {expected_seq - 1} but its head says {head.seq}: "
            "records were removed from the end"
        )
    for table, model in AUDITED.items():
        seen: set[str] = set()
        for obj in session.scalars(select(model)):
            key = row_key(obj)
            seen.add(key)
            snap = canonical(snapshot(obj))
            want = latest.get((table, key), "<absent>")
            if want == "<absent>":
                problems.append(f"{table} row {key} is not in the audit trail (added behind the program's back)")
            elif want is None:
                problems.append(f"{table} row {key} was deleted per the audit trail but exists")
            elif want != snap:
                cols = _diff(json.loads(want), json.loads(snap))
                problems.append(f"{table} row {key} was changed outside the program ({cols})")
        for (t, key), want in latest.items():
            if t == table and want is not None and key not in seen:
                problems.append(f"{table} row {key} was deleted outside the program")
        if len(problems) >= max_problems:
            break
    return VerifyReport(records=n, problems=problems[:max_problems])


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    cols = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "column(s) " + ", ".join(cols)


AUDIT_CSV_FIELDS = (
    "seq", "ts", "user_id", "user_name", "action", "entity", "entity_id",
    "old_json", "new_json", "reason", "prev_hash", "hash",
)


def export_csv(records: Iterable[AuditLog], path: Path) -> int:
    """Write the trail as CSV (one row per record, all columns); returns the count.

    A last column, ``export_software_version``, names the program version that wrote the file
    (every output carries it); it is not part of the hashed records."""
    from .. import __version__

    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*AUDIT_CSV_FIELDS, "export_software_version"])
        for rec in records:
            w.writerow([*(getattr(rec, f) for f in AUDIT_CSV_FIELDS), __version__])
            n += 1
    return n
