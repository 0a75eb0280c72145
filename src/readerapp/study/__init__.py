"""The blinded double-reading study: database, roles, worklists, reads, adjudication, audit, export.

Open a study with :class:`StudyService` (an SQLite path, a database URL, or nothing for the default
study in the user's data folder); every method takes the logged-in :class:`Actor`. The command line
(``readerapp study ...``) and the GUI both go through it. See docs/STUDY.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import Actor, Role
    from .config import StudyConfig, load_config
    from .service import StudyService, WorklistEntry

__all__ = ["Actor", "Role", "StudyConfig", "StudyService", "WorklistEntry", "load_config"]

_WHERE = {
    "Actor": "auth", "Role": "auth", "StudyConfig": "config", "load_config": "config",
    "StudyService": "service", "WorklistEntry": "service",
}


def __getattr__(name: str) -> Any:
    """Lazy re-exports: ``import readerapp.study`` stays cheap (no SQLAlchemy until used)."""
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(name)
