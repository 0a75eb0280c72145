"""The study service: the one place where the study's rules are applied.

Windows, commands and scripts call these methods; each takes the acting, logged-in :class:`Actor`
and checks the role first, so no caller can go round blinding or permissions. The methods are
grouped in mixins by topic (import, reading and adjudication, export) to keep modules small; this
module holds the study itself, users, log-in, worklists and the audit trail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from . import audit
from .auditkey import AuditKey, AuditKeyError, create_key
from .auth import (
    Actor,
    Role,
    check_password,
    dummy_check,
    hash_password,
    issue,
    parse_role,
    require,
    utc_clock,
)
from .base import SYSTEM
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
from .models import AuditHead, AuditLog, AuthState, Case, CaseLink, Read, Study, User, snapshot
from .originals import OriginalsMixin
from .private import anchor_path, write_private_text
from .status import ReadKind, ReadStatus, WorklistStatus

log = logging.getLogger(__name__)

#: The one answer to a failed log-in, whether the name or the password was wrong.
LOGIN_FAILED = "unknown user or wrong password"
#: How a log-in with a name that has no account is recorded (the name itself is not).
UNKNOWN_USER = "unknown user"


def _auth_snapshot(state: AuthState) -> dict[str, object]:
    return {"failed_count": state.failed_count, "locked_until": state.locked_until}


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
        audit_key: str | os.PathLike[str] | None = None,
        migrate: bool | None = None,
    ):
        self.db = Database(db, storage, audit_key=audit_key, migrate=migrate)
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
            key = self._new_audit_key(s)
            study = Study(
                id=1,
                name=config.name,
                config_json=config.to_json(),
                deid_secret=secrets.token_hex(32),
                created_at=audit.utc_now(),
            )
            s.add(study)
            self._audit_row(s, actor, "study.create", study)
            self._audit_event(s, None, SYSTEM, "audit.key", "audit", key.key_id,
                              new={"key_id": key.key_id, "legacy_before": key.legacy_before,
                                   "anchor_public_key": key.public_key_hex()})
        self.db.make_dir(self.storage)
        self._config = config
        log.info("study created")

    def describe(self) -> str:
        """Where this study lives, for messages (the database URL without its password, the folder)."""
        from sqlalchemy.engine import make_url

        return f"{make_url(self.db.url).render_as_string(hide_password=True)}; files in {self.storage}"

    # --- users and log-in ----------------------------------------------------------------
    def has_users(self) -> bool:
        """Whether the study has any user yet (the first one needs no administrator's log-in)."""
        with self.db.transaction() as s:
            return bool(s.scalar(select(func.count()).select_from(User)))

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
        attempt is audited (the failure is committed before the error is raised), with the
        account state it leaves (failures so far, lock). An unknown name costs the same password
        check as a known one and gets the same answer as a wrong password; it is recorded as
        "unknown user" with a keyed hash, never as typed (it may be a password)."""
        sec = self.config.security
        now = self.clock()
        failure: StudyError | None = None
        with self.db.transaction() as s:
            user = s.scalar(select(User).where(User.name == name))
            state = None if user is None else (s.get(AuthState, user.id) or AuthState(user_id=user.id, failed_count=0))
            if user is None or state is None:
                dummy_check(password)
                self._audit_event(s, None, UNKNOWN_USER, "login.failed", "user",
                                  "name-hmac:" + self._name_token(s, name), reason="unknown user")
                failure = AuthenticationError(LOGIN_FAILED)
            elif state.locked_until and dt.datetime.fromisoformat(state.locked_until) > now:
                check_password(user.password_hash, password)  # same time as any other answer
                self._audit_event(s, user.id, name, "login.refused", "user", str(user.id), reason="account locked",
                                  new=_auth_snapshot(state))
                failure = AccountLockedError(
                    f"the account {name!r} is locked after {sec.max_failed_logins} failed log-ins; "
                    f"try again after {state.locked_until[:19]} UTC or ask an administrator"
                )
            elif not user.active:
                ok = check_password(user.password_hash, password)
                self._audit_event(s, user.id, name, "login.refused", "user", str(user.id), reason="account disabled")
                # only the account's owner learns that it is disabled
                failure = AuthenticationError(f"the account {name!r} is disabled" if ok else LOGIN_FAILED)
            elif not check_password(user.password_hash, password):
                s.add(state)
                state.failed_count = (state.failed_count or 0) + 1
                if state.failed_count >= sec.max_failed_logins:
                    state.locked_until = (now + dt.timedelta(minutes=sec.lockout_minutes)).isoformat()
                    state.failed_count = 0
                    self._audit_event(s, user.id, name, "login.locked", "user", str(user.id),
                                      new=_auth_snapshot(state))
                    failure = AccountLockedError(
                        f"the account {name!r} is now locked for {sec.lockout_minutes:g} minutes after "
                        f"{sec.max_failed_logins} failed log-ins"
                    )
                else:
                    self._audit_event(s, user.id, name, "login.failed", "user", str(user.id),
                                      new=_auth_snapshot(state))
                    failure = AuthenticationError(LOGIN_FAILED)
            else:
                s.add(state)
                state.failed_count = 0
                state.locked_until = None
                state.last_login_at = now.isoformat()
                self._audit_event(s, user.id, name, "login", "user", str(user.id), new=_auth_snapshot(state))
                actor = issue(Actor(
                    user_id=user.id,
                    name=user.name,
                    role=Role(user.role),
                    timeout=dt.timedelta(minutes=sec.inactivity_minutes),
                    clock=self.clock,
                    last_activity=now,
                ))
        if failure is not None:
            raise failure
        return actor

    def _name_token(self, s: Session, name: str) -> str:
        """A keyed hash of a name typed at log-in: attempts on one name can be grouped, but the
        name (perhaps a password typed into the wrong field) cannot be read back."""
        key = self.db.audit_key
        if key is not None:
            return key.keyed_hash(name)
        study = s.get(Study, 1)
        secret = study.deid_secret if study is not None else ""
        return hmac.new(secret.encode(), b"name\0" + name.encode(), hashlib.sha256).hexdigest()[:24]

    def set_user_role(self, actor: Actor, name: str, role: str | Role, reason: str) -> None:
        """Change a user's role (audited with the reason)."""
        require(actor, Role.ADMIN, action="changing a user's role")
        role = parse_role(role) if isinstance(role, str) else role
        if not reason.strip():
            raise StudyError("give a reason for changing a user's role")
        with self.db.transaction() as s:
            user = self._user(s, name)
            old = snapshot(user)
            user.role = role.value
            self._audit_row(s, actor, "user.role", user, old=old, reason=reason)

    def set_password(self, actor: Actor, name: str, new_password: str, reason: str = "") -> None:
        """Set a user's password: an administrator for anyone, or a user for themself. Clears a
        lock (audited; the trail holds a hash of the hash, never the password)."""
        if actor.name != name:
            require(actor, Role.ADMIN, action="setting another user's password")
        else:
            actor.touch()
        new_hash = hash_password(new_password)
        with self.db.transaction() as s:
            user = self._user(s, name)
            old = snapshot(user)
            user.password_hash = new_hash
            state = s.get(AuthState, user.id)
            if state is not None:
                state.failed_count = 0
                state.locked_until = None
            self._audit_row(s, actor, "user.password", user, old=old, reason=reason or "password set")

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
    def audit_verify(self, anchors: Iterable[str] = ()) -> audit.VerifyReport:
        """Check the trail's hash chain, its MACs (when the audit key is at hand) and the given
        anchors, and replay it against the live rows, all in one snapshot (anyone may run it: it
        reports table names and keys only)."""
        with self.db.transaction(snapshot=True) as s:
            return audit.verify(s, key=self.db.audit_key, anchors=list(anchors))

    def _new_audit_key(self, s: Session) -> AuditKey:
        """Create the key file (0600) and make it the trail's key, inside transaction ``s``; the
        file is removed again if the transaction does not commit."""
        head = s.get(AuditHead, 1, with_for_update=True)
        assert head is not None
        path = self.db.audit_key_path
        key = create_key(path, head.seq + 1, audit.utc_now())
        event.listen(s, "after_rollback", lambda _s: path.unlink(missing_ok=True), once=True)
        audit.install_key(s, key)
        self.db.install_audit_key(key)
        return key

    def has_audit_key(self) -> bool:
        """Whether the study's audit key is at hand (a study server holds it; clients never do)."""
        return self.db.audit_key is not None

    def audit_key_where(self) -> str:
        """Where the audit key file is, for messages."""
        return str(self.db.audit_key_path)

    def audit_key_create(self, actor: Actor) -> str:
        """Give a study made before audit keys existed its key: records so far stay legacy
        (checked by the hash chain; anchor them at once), every later one is authenticated."""
        require(actor, Role.ADMIN, action="creating the audit key")
        with self.db.transaction() as s:
            key = self._new_audit_key(s)
            self._audit_event(s, actor.user_id, actor.name, "audit.key", "audit", key.key_id,
                              new={"key_id": key.key_id, "legacy_before": key.legacy_before,
                                   "anchor_public_key": key.public_key_hex()})
            return audit.head_anchor(s, key, self.config.name)

    def audit_anchor(self, actor: Actor) -> str:
        """The chain head signed with the study's key, for the sponsor to keep (audited). The
        administrator's command; the statistician's exports carry one too."""
        require(actor, Role.ADMIN, Role.STATISTICIAN, action="anchoring the audit trail")
        with self.db.transaction() as s:
            return self._anchor(s, actor)

    def _anchor(self, s: Session, actor: Actor) -> str:
        key = self.db.audit_key
        if key is None:
            raise AuditKeyError(f"this study has no audit key at {self.db.audit_key_path}: create one "
                                "with `readerapp audit key create` or name it with --audit-key")
        self._audit_event(s, actor.user_id, actor.name, "audit.anchor", "audit", key.key_id)
        return audit.head_anchor(s, key, self.config.name)

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
            anchor = self._anchor(s, actor) if self.db.audit_key is not None else None
        if anchor is not None:
            write_private_text(anchor_path(path), anchor + "\n")
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
