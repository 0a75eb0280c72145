"""What every part of the study service shares: the database, the config, lookups, audit helpers.

The service is assembled from topic mixins (reading, import, export) over this base, so each module
stays small while every method still works on one object with one database and one clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .auth import Actor
from .config import StudyConfig
from .db import Database
from .errors import StudyError, StudyStateError
from .models import Base, Case, Study, User

SYSTEM = "system"


class ServiceBase:
    db: Database
    clock: Callable[[], dt.datetime]
    _config: StudyConfig | None

    @property
    def storage(self) -> Path:
        """The study's file folder (de-identified scans under cases/, reads under reads/)."""
        return self.db.storage

    @property
    def config(self) -> StudyConfig:
        if self._config is None:
            with self.db.transaction() as s:
                study = s.get(Study, 1)
                if study is None:
                    raise StudyStateError(
                        "this database holds no study yet: create one with `readerapp study create CONFIG`"
                    )
                self._config = StudyConfig.from_json(study.config_json)
        return self._config

    def reauthenticate(self, actor: Actor, password: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _user(self, s: Session, name: str) -> User:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise StudyError(f"no user named {name!r} in this study")
        return user

    def _case(self, s: Session, code: str) -> Case:
        case = s.scalar(select(Case).where(Case.code == code))
        if case is None:
            raise StudyError(f"no case with code {code!r} in this study")
        return case

    def _audit_row(self, s: Session, actor: Actor | None, action: str, obj: Base, *,
                   old: dict[str, Any] | None = None, reason: str = "", deleted: bool = False) -> None:
        audit.append_row(s, actor.user_id if actor else None, actor.name if actor else SYSTEM,
                         action, obj, old=old, reason=reason, deleted=deleted)

    def _audit_event(self, s: Session, user_id: int | None, user_name: str, action: str,
                     entity: str, entity_id: str, *, new: dict[str, Any] | None = None,
                     reason: str = "") -> None:
        audit.append(s, user_id=user_id, user_name=user_name, action=action, entity=entity,
                     entity_id=entity_id, new=new, reason=reason)
