"""The audit trail: every create, change, sign, import and export, chained by SHA-256 and
authenticated by HMAC-SHA256 under the study's audit key (:mod:`readerapp.study.auditkey`).

Each record holds who, when, what (entity and key), the old and new row snapshots and why. Its hash
is SHA-256 of the previous record's hash followed by the record's canonical JSON, so an edit,
insertion or deletion anywhere breaks the chain. :func:`verify` also replays the trail: the latest
snapshot of every audited row must equal the row in the database, which catches changes made to
the data tables themselves behind the program's back (raw SQL), not only to the trail.

Appending first updates the single ``audit_head`` row, which takes a row lock (PostgreSQL) or the
write lock (SQLite, whose transactions start with BEGIN IMMEDIATE): concurrent writers queue there,
so the chain never forks.

The chain alone can be rewritten consistently by anyone who can write the database; the MACs
cannot without the key file, which the database does not hold. ``verify`` reports a record whose
MAC is wrong or missing (after the key's ``legacy_before``), a head row whose MAC is wrong, and a
trail that differs from a signed anchor the sponsor holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .auditkey import Anchor, AuditKey, AuditKeyError, parse_anchor
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
    """Add one record at the end of the chain, inside the caller's transaction.

    The record is MACed with the audit key the session carries (``session.info["audit_key"]``,
    set by :meth:`Database.transaction`); a study whose head names a key refuses to append
    without it, so no unauthenticated record slips into a keyed trail."""
    session.flush()  # rows being audited get their keys first
    seq, prev, key_id = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash, AuditHead.key_id)
    ).one()
    key: AuditKey | None = session.info.get("audit_key")
    if key_id is not None and (key is None or key.key_id != key_id):
        where = session.info.get("audit_key_path", "the audit key file")
        raise AuditKeyError(
            f"this study's audit trail is authenticated by key {key_id[:12]}… but "
            + ("no key file was found" if key is None else f"the key file holds key {key.key_id[:12]}…")
            + f" at {where}: name the study's key with --audit-key PATH or READERAPP_AUDIT_KEY"
        )
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
    keyed = key_id is not None and key is not None
    rec.mac = key.record_mac(rec.seq, rec.hash) if keyed and key is not None else None
    session.add(rec)
    session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(hash=rec.hash, mac=key.head_mac(rec.seq, rec.hash) if keyed and key is not None else None)
    )
    return rec


def install_key(session: Session, key: AuditKey) -> None:
    """Make ``key`` the trail's key from the next record on (inside the caller's transaction)."""
    head = session.get(AuditHead, 1, with_for_update=True)
    assert head is not None
    if head.key_id is not None:
        raise AuditKeyError(f"this study's audit trail already has a key ({head.key_id[:12]}…)")
    if key.legacy_before != head.seq + 1:
        raise AuditKeyError("the audit trail grew while its key was made; try again")
    head.key_id = key.key_id
    head.mac = key.head_mac(head.seq, head.hash)
    session.info["audit_key"] = key


def head_anchor(session: Session, key: AuditKey, study: str) -> str:
    """The chain head signed with the key's Ed25519 key: what the sponsor keeps."""
    session.flush()
    seq, head_hash = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
    return key.sign_anchor(study=study, seq=int(seq), head_hash=head_hash, ts=utc_now())


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
    #: Limits of the check that are not tampering (no key at hand, legacy records).
    notes: list[str] = field(default_factory=list)
    #: Records checked against the audit key (0 when no key was at hand).
    authenticated: int = 0
    legacy: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, max_problems: int = 200, *, key: AuditKey | None = None,
           anchors: Iterable[str] = ()) -> VerifyReport:
    """Check the chain, its MACs (with ``key``) and ``anchors``, and replay the trail against
    the live rows; list every discrepancy found.

    Run it in one snapshot (:meth:`Database.transaction` with ``snapshot=True``): the trail and
    the rows must be read as of one moment, or a write committed in between looks like tampering.
    """
    problems: list[str] = []
    notes: list[str] = []
    parsed: list[Anchor] = []
    for text in anchors:
        try:
            a = parse_anchor(text)
        except AuditKeyError as exc:
            problems.append(str(exc))
            continue
        if key is not None and a.pub != key.public_key_hex():
            problems.append(f"the anchor of record {a.seq} was not signed by this study's audit key")
            continue
        parsed.append(a)
    head = session.get(AuditHead, 1)
    if key is not None and head is not None and head.key_id is not None and head.key_id != key.key_id:
        problems.append(f"the audit key given ({key.key_id[:12]}…) is not this study's ({head.key_id[:12]}…)")
        key = None
    keyed_from = None if key is None else key.legacy_before
    if key is None and head is not None and head.key_id is not None:
        notes.append("no audit key at hand: only the hash chain was checked, which someone with write "
                     "access to the database can rewrite consistently; give --audit-key or an --anchor")
    if key is not None and head is not None and head.key_id is None:
        problems.append("the audit key's trail has lost its key marker (head row rewritten)")
    by_seq = {a.seq: a for a in parsed}
    prev = GENESIS
    expected_seq = 1
    latest: dict[tuple[str, str], str | None] = {}
    n = auth = legacy = 0
    for rec in session.scalars(select(AuditLog).order_by(AuditLog.seq)):
        n += 1
        if rec.seq != expected_seq:
            problems.append(f"audit record(s) {expected_seq}..{rec.seq - 1} are missing (deleted)")
        if rec.prev_hash != prev:
            problems.append(f"audit record {rec.seq}: does not follow record {rec.seq - 1} (chain broken)")
        if record_hash(rec.prev_hash, rec) != rec.hash:
            problems.append(f"audit record {rec.seq} ({rec.action} {rec.entity} {rec.entity_id}) was altered")
        if key is not None and keyed_from is not None:
            if rec.seq < keyed_from:
                legacy += 1
            elif rec.mac is None or not hmac.compare_digest(rec.mac, key.record_mac(rec.seq, rec.hash)):
                problems.append(f"audit record {rec.seq} ({rec.action} {rec.entity} {rec.entity_id}) is not "
                                "authenticated by the study's audit key: it was written or rewritten without it")
            else:
                auth += 1
        anc = by_seq.pop(rec.seq) if rec.seq in by_seq else None
        if anc is not None and anc.hash != rec.hash:
            problems.append(f"the audit trail up to record {rec.seq} is not the one anchored on {anc.ts[:19]} "
                            "(records were rewritten)")
        prev = rec.hash
        expected_seq = rec.seq + 1
        if rec.entity in AUDITED:
            latest[(rec.entity, rec.entity_id)] = rec.new_json
        if len(problems) >= max_problems:
            break
    for a in by_seq.values():
        problems.append(f"the anchor of {a.ts[:19]} names record {a.seq}, which is not in the trail "
                        "(records were removed)")
    if head is None:
        problems.append("the audit chain's head row is missing")
    elif head.seq != expected_seq - 1 or head.hash != prev:
        problems.append(
            f"the audit trail ends at record {expected_seq - 1} but its head says {head.seq}: "
            "records were removed from the end"
        )
    elif key is not None and head.key_id is not None and (
        head.mac is None or not hmac.compare_digest(head.mac, key.head_mac(head.seq, head.hash))
    ):
        problems.append("the audit chain's head row is not authenticated by the audit key "
                        "(the trail was cut or rewritten)")
    if legacy:
        notes.append(f"{legacy} legacy record(s) from before the study's audit key are checked by the "
                     "hash chain only" + (" and the anchor(s)" if parsed else ""))
    for table, model in AUDITED.items():
        seen: set[str] = set()
        for obj in session.scalars(select(model)):
            rk = row_key(obj)
            seen.add(rk)
            snap = canonical(snapshot(obj))
            want = latest.get((table, rk), "<absent>")
            if want == "<absent>":
                problems.append(f"{table} row {rk} is not in the audit trail (added behind the program's back)")
            elif want is None:
                problems.append(f"{table} row {rk} was deleted per the audit trail but exists")
            elif want != snap:
                cols = _diff(json.loads(want), json.loads(snap))
                problems.append(f"{table} row {rk} was changed outside the program ({cols})")
        for (t, k), want in latest.items():
            if t == table and want is not None and k not in seen:
                problems.append(f"{table} row {k} was deleted outside the program")
        if len(problems) >= max_problems:
            break
    return VerifyReport(records=n, problems=problems[:max_problems], notes=notes, authenticated=auth,
                        legacy=legacy)


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    cols = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "column(s) " + ", ".join(cols)


AUDIT_CSV_FIELDS = (
    "seq", "ts", "user_id", "user_name", "action", "entity", "entity_id",
    "old_json", "new_json", "reason", "prev_hash", "hash", "mac",
)


def export_csv(records: Iterable[AuditLog], path: Path) -> int:
    """Write the trail as CSV (one row per record, all columns); returns the count.

    A last column, ``export_software_version``, names the program version that wrote the file
    (every output carries it); it is not part of the hashed records. The file is private (0600)
    and its cells cannot run as spreadsheet formulas (:func:`readerapp.study.private.csv_cell`:
    such a cell gets a leading quote, so compare with the database after removing it)."""
    from .. import __version__
    from .private import write_csv

    return write_csv(path, [*AUDIT_CSV_FIELDS, "export_software_version"],
                     ([*(getattr(rec, f) for f in AUDIT_CSV_FIELDS), __version__] for rec in records))
