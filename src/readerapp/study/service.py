"""The study service: the one place where the study's rules are applied.

Windows, commands and scripts call these methods; each takes the acting, logged-in :class:`Actor`
and checks the role first, so no caller can go round blinding or permissions. The methods are
grouped in mixins by topic (import, reading and adjudication, export) to keep modules small; this
module holds the study itself, users, log-in, worklists and the audit trail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from . import audit
from .auth import (
    Actor,
    Role,
    check_password,
    hash_password,
    parse_role,
    require,
    utc_clock,
)
from .config import StudyConfig
from .db import Database
from .errors import (
    AccountLockedError,
    AuthenticationError,
    StudyError,
    StudyPermissionError,
    StudyStateError,
)
from .export import ExportMixin
from .importer import ImportMixin
from .models import AuditLog, AuthState, Case, CaseLink, Read, Study, User, snapshot
from .originals import OriginalsMixin
from .status import ReadKind, ReadStatus, WorklistStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorklistEntry:
    """What a reader sees of one scan: a random code, never the subject, date or arm."""

    position: int
    code: str
    status: WorklistStatus
    needs_fibrosis: bool
    read_id: int | None
    version: int | None
    #: Only in longitudinal studies; None otherwise.
    visit: str | None = None


class StudyService(ImportMixin, ExportMixin, OriginalsMixin):
    """One open study database (SQLite file or PostgreSQL URL) and its storage folder."""

    def __init__(
        self,
        db: str | os.PathLike[str] | None = None,
        storage: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], dt.datetime] = utc_clock,
    ):
        self.db = Database(db, storage)
        self.clock = clock
        self._config: StudyConfig | None = None

    # --- the study ------------------------------------------------------------------------
    def create_study(self, config: StudyConfig, actor: Actor | None = None) -> None:
        """Set the study up (once per database). Before any user exists no actor is needed;
        afterwards only an administrator may."""
        with self.db.transaction() as s:
            if s.get(Study, 1) is not None:
                raise StudyStateError(f"the database already holds the study {s.get(Study, 1).name!r}")  # type: ignore[union-attr]
            if actor is None:
                if s.scalar(select(func.count()).select_from(User)):
                    raise StudyPermissionError("creating a study in a database with users needs an administrator")
            else:
                require(actor, Role.ADMIN, action="creating a study")
            study = Study(
                id=1,
                name=config.name,
                config_json=config.to_json(),
                deid_secret=secrets.token_hex(32),
                created_at=audit.utc_now(),
            )
            s.add(study)
            self._audit_row(s, actor, "study.create", study)
        self.storage.mkdir(parents=True, exist_ok=True)
        self._config = config
        log.info("study created")

    # --- users and log-in ----------------------------------------------------------------
    def add_user(self, actor: Actor | None, name: str, role: str | Role, password: str) -> int:
        """Create a user. The very first user needs no actor and must be an administrator."""
        role = parse_role(role) if isinstance(role, str) else role
        name = name.strip()
        if not name or len(name) > 100:
            raise StudyError("a user name must be 1 to 100 characters")
        with self.db.transaction() as s:
            n_users = s.scalar(select(func.count()).select_from(User)) or 0
            if actor is None:
                if n_users:
                    raise StudyPermissionError("adding a user needs an administrator's log-in")
                if role is not Role.ADMIN:
                    raise StudyPermissionError("the first user of a study must be an administrator")
            else:
                require(actor, Role.ADMIN, action="adding a user")
            if s.scalar(select(User).where(User.name == name)) is not None:
                raise StudyStateError(f"a user named {name!r} already exists")
            user = User(
                name=name,
                role=role.value,
                password_hash=hash_password(password),
                active=True,
                worklist_seed=secrets.token_hex(16),
                created_at=audit.utc_now(),
            )
            s.add(user)
            s.flush()
            s.add(AuthState(user_id=user.id, failed_count=0))
            self._audit_row(s, actor, "user.create", user)
            return user.id

    def set_user_active(self, actor: Actor, name: str, active: bool, reason: str) -> None:
        require(actor, Role.ADMIN, action="enabling or disabling a user")
        if not reason.strip():
            raise StudyError("give a reason for enabling or disabling a user")
        with self.db.transaction() as s:
            user = self._user(s, name)
            old = snapshot(user)
            user.active = active
            self._audit_row(s, actor, "user.enable" if active else "user.disable", user, old=old, reason=reason)

    def login(self, name: str, password: str) -> Actor:
        """Check the password; lock the account after the study's number of failures. Every
        attempt is audited (the failure is committed before the error is raised)."""
        sec = self.config.security
        now = self.clock()
        failure: StudyError | None = None
        with self.db.transaction() as s:
            user = s.scalar(select(User).where(User.name == name))
            state = None if user is None else (s.get(AuthState, user.id) or AuthState(user_id=user.id, failed_count=0))
            if user is None or state is None:
                self._audit_event(s, None, name, "login.failed", "user", name, reason="unknown user")
                failure = AuthenticationError("unknown user or wrong password")
            elif state.locked_until and dt.datetime.fromisoformat(state.locked_until) > now:
                self._audit_event(s, user.id, name, "login.refused", "user", str(user.id), reason="account locked")
                failure = AccountLockedError(
                    f"the account {name!r} is locked after {sec.max_failed_logins} failed log-ins; "
                    f"try again after {state.locked_until[:19]} UTC or ask an administrator"
                )
            elif not user.active:
                self._audit_event(s, user.id, name, "login.refused", "user", str(user.id), reason="account disabled")
                failure = AuthenticationError(f"the account {name!r} is disabled")
            elif not check_password(user.password_hash, password):
                s.add(state)
                state.failed_count = (state.failed_count or 0) + 1
                if state.failed_count >= sec.max_failed_logins:
                    state.locked_until = (now + dt.timedelta(minutes=sec.lockout_minutes)).isoformat()
                    state.failed_count = 0
                    self._audit_event(s, user.id, name, "login.locked", "user", str(user.id))
                    failure = AccountLockedError(
                        f"the account {name!r} is now locked for {sec.lockout_minutes:g} minutes after "
                        f"{sec.max_failed_logins} failed log-ins"
                    )
                else:
                    self._audit_event(s, user.id, name, "login.failed", "user", str(user.id))
                    failure = AuthenticationError("unknown user or wrong password")
            else:
                s.add(state)
                state.failed_count = 0
                state.locked_until = None
                state.last_login_at = now.isoformat()
                self._audit_event(s, user.id, name, "login", "user", str(user.id))
                actor = Actor(
                    user_id=user.id,
                    name=user.name,
                    role=Role(user.role),
                    timeout=dt.timedelta(minutes=sec.inactivity_minutes),
                    clock=self.clock,
                    last_activity=now,
                )
        if failure is not None:
            raise failure
        return actor

    def reauthenticate(self, actor: Actor, password: str) -> None:
        """An electronic signature asks for the password again; failures count toward lockout."""
        actor.touch()
        fresh = self.login(actor.name, password)
        if fresh.user_id != actor.user_id:  # pragma: no cover - same name, same row
            raise AuthenticationError("signature does not belong to the logged-in user")

    def logout(self, actor: Actor) -> None:
        actor.logout()

    def users(self, actor: Actor) -> list[tuple[str, str, bool]]:
        require(actor, Role.ADMIN, action="listing users")
        with self.db.transaction() as s:
            return [(u.name, u.role, u.active) for u in s.scalars(select(User).order_by(User.id))]

    # --- worklists ----------------------------------------------------------------------
    def worklist(self, actor: Actor) -> list[WorklistEntry]:
        """Every scan, in this reader's own random order, with the reader's status."""
        require(actor, Role.READER, action="a reading worklist")
        cfg = self.config
        with self.db.transaction() as s:
            me = s.get(User, actor.user_id)
            assert me is not None
            cases = list(s.scalars(select(Case)))
            mine: dict[int, Read] = {}
            for r in s.scalars(select(Read).where(Read.reader_id == actor.user_id, Read.kind == ReadKind.READ)):
                if r.case_id not in mine or r.version > mine[r.case_id].version:
                    mine[r.case_id] = r
            visits: dict[int, tuple[str, str]] = {}
            if cfg.longitudinal:
                visits = {lk.case_id: (lk.subject, lk.visit) for lk in s.scalars(select(CaseLink))}
        order = _ordered(cases, me.worklist_seed, visits, cfg)
        out = []
        for i, c in enumerate(order, 1):
            mr = mine.get(c.id)
            status = (WorklistStatus.NEW if mr is None else WorklistStatus.SIGNED if mr.status == ReadStatus.SIGNED
                      else WorklistStatus.IN_PROGRESS)
            out.append(
                WorklistEntry(
                    position=i,
                    code=c.code,
                    status=status,
                    needs_fibrosis=c.needs_fibrosis,
                    read_id=None if mr is None else mr.id,
                    version=None if mr is None else mr.version,
                    visit=visits[c.id][1] if cfg.longitudinal and c.id in visits else None,
                )
            )
        return out

    # --- audit ----------------------------------------------------------------------------
    def audit_verify(self) -> audit.VerifyReport:
        """Check the trail's hash chain and replay it against the live rows (anyone may run it:
        it reports table names and keys only)."""
        with self.db.transaction() as s:
            return audit.verify(s)

    def audit_records(self, actor: Actor) -> list[AuditLog]:
        require(actor, Role.ADMIN, action="browsing the audit trail")
        with self.db.transaction() as s:
            return list(s.scalars(select(AuditLog).order_by(AuditLog.seq)))

    def audit_export(self, actor: Actor, path: str | os.PathLike[str]) -> int:
        require(actor, Role.ADMIN, action="exporting the audit trail")
        records = self.audit_records(actor)
        n = audit.export_csv(records, Path(path))
        with self.db.transaction() as s:
            self._audit_event(s, actor.user_id, actor.name, "audit.export", "audit", str(n),
                              new={"records": n, "file": Path(path).name})
        return n


def _rank(seed: str, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def _ordered(cases: list[Case], seed: str, visits: dict[int, tuple[str, str]], cfg: StudyConfig) -> list[Case]:
    """Per-scan mode: a random permutation keyed by the reader's stored seed (stable as cases are
    added). Longitudinal mode: subjects in random order, each subject's visits in time order."""
    if not cfg.longitudinal:
        return sorted(cases, key=lambda c: _rank(seed, c.code))
    vindex = {v: i for i, v in enumerate(cfg.visits)}

    def key(c: Case) -> tuple[str, int, str]:
        subj, visit = visits.get(c.id, ("", ""))
        return (_rank(seed, "subject:" + subj), vindex.get(visit, 99), c.code)

    return sorted(cases, key=key)
