"""People, roles and log-in: argon2 password hashes, lockout, inactivity timeout.

Every service function takes an :class:`Actor` (what :meth:`StudyService.login` returns) and calls
:func:`require` first, so the role rules live in the service layer where no window, script or
command can go round them.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .errors import AuthenticationError, SessionExpiredError, StudyConfigError, StudyPermissionError

MIN_PASSWORD_LENGTH = 8

#: Modest parameters so a log-in stays well under a second on an old workstation (RFC 9106's
#: second recommended option is 64 MiB; readers log in rarely, so this is about 20 ms here).
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class Role(StrEnum):
    ADMIN = "admin"
    READER = "reader"
    ADJUDICATOR = "adjudicator"
    STATISTICIAN = "statistician"


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError as exc:
        raise StudyConfigError(
            f"unknown role {text!r}: use one of {', '.join(r.value for r in Role)}"
        ) from exc


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StudyConfigError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DUMMY_HASH: str | None = None


def dummy_check(password: str) -> None:
    """Spend the time of one password check, for a name that has no account: a log-in with an
    unknown name must not answer faster than one with a wrong password."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _HASHER.hash("readerapp-dummy-password")
    check_password(_DUMMY_HASH, password)


def utc_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Actor:
    """An authenticated person. ``touch`` enforces the inactivity timeout on every call."""

    user_id: int
    name: str
    role: Role
    timeout: dt.timedelta
    clock: Callable[[], dt.datetime] = field(default=utc_clock, repr=False)
    last_activity: dt.datetime = field(default_factory=utc_clock)
    logged_out: bool = False

    def touch(self) -> None:
        now = self.clock()
        if self.logged_out or now - self.last_activity > self.timeout:
            self.logged_out = True
            raise SessionExpiredError(
                f"{self.name} was logged out after {self.timeout.total_seconds() / 60:g} minutes "
                "without activity; log in again"
            )
        self.last_activity = now

    def logout(self) -> None:
        self.logged_out = True

    def expired(self) -> bool:
        """Idle longer than the timeout (a window checks this on a timer to lock itself)."""
        return self.logged_out or self.clock() - self.last_activity > self.timeout

    def activity(self) -> None:
        """Count user input (mouse, keys) as activity without a service call."""
        if not self.expired():
            self.last_activity = self.clock()


#: Actors made by a log-in in this process: id -> (the actor, its user id and role at log-in).
_ISSUED: dict[int, tuple[weakref.ref[Actor], int, Role]] = {}


def issue(actor: Actor) -> Actor:
    """Record ``actor`` as made by a successful log-in (only :meth:`StudyService.login` calls it),
    so that :func:`require` refuses an Actor made by hand or one whose role was changed."""
    key = id(actor)
    _ISSUED[key] = (weakref.ref(actor), actor.user_id, actor.role)
    weakref.finalize(actor, _ISSUED.pop, key, None)
    return actor


def require(actor: Actor, *roles: Role, action: str) -> None:
    """Raise :class:`StudyPermissionError` unless ``actor`` holds one of ``roles`` (and is active);
    :class:`AuthenticationError` for an actor that no log-in made."""
    issued = _ISSUED.get(id(actor))
    if issued is None or issued[0]() is not actor or (issued[1], issued[2]) != (actor.user_id, actor.role):
        raise AuthenticationError(f"{action} needs a user logged in with a password")
    actor.touch()
    if actor.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise StudyPermissionError(f"{action} needs the {allowed} role; {actor.name} is {actor.role.value}")
