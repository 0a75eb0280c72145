"""The study database schema (SQLAlchemy 2 declarative); Alembic migrations in ``migrations/``.

Times are stored as ISO-8601 UTC text and structured values as canonical JSON text, so a row reads
back byte-identical on SQLite and PostgreSQL: the audit trail hashes row snapshots, and
``audit verify`` compares them with the live rows.

Who may read what is enforced by the service layer, not here. ``CaseLink`` (case code to subject,
visit, date and original UIDs) is the only table that identifies anything; only administrators and
statisticians reach it through the service.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .status import CaseStatus, ReadKind


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "study"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    config_json: Mapped[str] = mapped_column(Text)
    #: Secret (hex) that keys the consistent remapping of DICOM UIDs; never shown.
    deid_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(40))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Seed of this reader's worklist order (stored so the order is reproducible and auditable).
    worklist_seed: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(40))


class AuthState(Base):
    """Volatile log-in state (failed attempts, lock); kept apart so user rows stay audit-stable."""

    __tablename__ = "auth_state"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_login_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class Case(Base):
    """One de-identified scan under a random code: what readers see."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    #: Folder of the de-identified DICOM files, relative to the study storage folder.
    folder: Mapped[str] = mapped_column(String(300))
    #: JSON list of [relative path, sha256] of every file.
    files_json: Mapped[str] = mapped_column(Text)
    series_uid: Mapped[str] = mapped_column(String(64))
    study_uid: Mapped[str] = mapped_column(String(64))
    needs_fibrosis: Mapped[bool] = mapped_column(Boolean)
    #: a :class:`~readerapp.study.status.CaseStatus` value
    status: Mapped[str] = mapped_column(String(20), default=CaseStatus.READING.value)
    created_at: Mapped[str] = mapped_column(String(40))


class CaseLink(Base):
    """Case code to subject, visit and acquisition date: administrators and statisticians only."""

    __tablename__ = "case_links"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(100))
    visit: Mapped[str] = mapped_column(String(50))
    acquisition_date: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(Text)
    original_study_uid: Mapped[str] = mapped_column(String(64))
    original_series_uid: Mapped[str] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("subject", "visit", name="uq_case_links_subject_visit"),)


class Read(Base):
    """One version of one reader's (or the adjudicator's) read of a case."""

    __tablename__ = "reads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: a :class:`~readerapp.study.status.ReadKind` value: an independent reader's read, or an
    #: adjudicator's corrected final read
    kind: Mapped[str] = mapped_column(String(20), default=ReadKind.READ.value)
    version: Mapped[int] = mapped_column(Integer)
    #: a :class:`~readerapp.study.status.ReadStatus` value (draft or signed)
    status: Mapped[str] = mapped_column(String(20))
    folder: Mapped[str] = mapped_column(String(300))
    labels_sha256: Mapped[str] = mapped_column(String(64))
    form_json: Mapped[str] = mapped_column(Text)
    endpoints_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(40))
    signed_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    signature_meaning: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("reads.id"), nullable=True)
    based_on_read_id: Mapped[int | None] = mapped_column(ForeignKey("reads.id"), nullable=True)
    __table_args__ = (
        UniqueConstraint("case_id", "reader_id", "kind", "version", name="uq_reads_version"),
    )


class Adjudication(Base):
    __tablename__ = "adjudications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    adjudicator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    final_read_id: Mapped[int] = mapped_column(ForeignKey("reads.id"))
    chosen_read_id: Mapped[int | None] = mapped_column(ForeignKey("reads.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[str] = mapped_column(String(40))
    signature_meaning: Mapped[str] = mapped_column(Text)


class Randomization(Base):
    __tablename__ = "randomization"
    subject: Mapped[str] = mapped_column(String(100), primary_key=True)
    arm: Mapped[str] = mapped_column(String(100))
    imported_at: Mapped[str] = mapped_column(String(40))


class AuditLog(Base):
    """Append-only, hash-chained record of every change (see :mod:`readerapp.study.audit`)."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(100))
    old_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's tip (one row). Appending locks it, which serialises writers on every backend;
    it also lets verify notice rows cut off the end of the chain."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


#: Tables whose every row is snapshotted into the audit trail, with the function naming a row.
AUDITED: dict[str, type[Base]] = {
    m.__tablename__: m for m in (Study, User, Case, CaseLink, Read, Adjudication, Randomization)
}


def row_key(obj: Base) -> str:
    """The primary key of a row as text (the audit trail's entity_id)."""
    mapper = obj.__mapper__
    return "/".join(str(getattr(obj, str(c.key))) for c in mapper.primary_key)


def snapshot(obj: Base) -> dict[str, Any]:
    """Every column of a row, JSON-ready; secrets replaced by their SHA-256 so the trail holds no
    password hash yet still notices a swapped one."""
    out: dict[str, Any] = {}
    for col in obj.__table__.columns:
        val = getattr(obj, col.key)
        if col.key in ("password_hash", "deid_secret") and val is not None:
            val = "sha256:" + hashlib.sha256(str(val).encode()).hexdigest()
        out[col.key] = val
    return out
