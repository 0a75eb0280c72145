"""Bearer tokens of the study server: made at log-in, ended by log-out, by the token's lifetime,
by the study's inactivity time, or when an administrator disables the user. Kept in the server's
memory only (as SHA-256 digests): a restart logs everyone out."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..study.auth import Actor
from ..study.errors import AuthenticationError, SessionExpiredError


@dataclass
class _Session:
    actor: Actor
    expires: dt.datetime


class Sessions:
    """Bearer tokens of logged-in users (in memory: a server restart logs everyone out)."""

    def __init__(self, clock: Callable[[], dt.datetime], lifetime: dt.timedelta):
        self.clock = clock
        self.lifetime = lifetime
        self._by_token: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def add(self, actor: Actor) -> tuple[str, dt.datetime]:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + self.lifetime
        with self._lock:
            for key in [k for k, v in self._by_token.items() if v.actor.expired() or now >= v.expires]:
                del self._by_token[key]  # forget dead log-ins as new ones arrive
            self._by_token[_digest(token)] = _Session(actor, expires)
        return token, expires

    def actor(self, authorization: str | None) -> Actor:
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthenticationError("not logged in: log in to the study server first")
        key = _digest(authorization.removeprefix("Bearer ").strip())
        with self._lock:
            sess = self._by_token.get(key)
            if sess is not None and (sess.actor.expired() or self.clock() >= sess.expires):
                del self._by_token[key]
                raise SessionExpiredError(f"the log-in of {sess.actor.name} has expired; log in again")
        if sess is None:
            raise SessionExpiredError("the log-in is not (or no longer) valid; log in again")
        sess.actor.touch()
        return sess.actor

    def drop_user(self, name: str) -> None:
        """End every log-in of a user (disabled by an administrator)."""
        with self._lock:
            for key in [k for k, v in self._by_token.items() if v.actor.name == name]:
                del self._by_token[key]

    def drop(self, authorization: str | None) -> None:
        if authorization and authorization.startswith("Bearer "):
            with self._lock:
                self._by_token.pop(_digest(authorization.removeprefix("Bearer ").strip()), None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
