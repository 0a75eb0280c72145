"""The study server: one process that alone holds a study's database credentials and files.

``readerapp server run --db URL --storage DIR`` serves the study over HTTPS (:mod:`.app`, FastAPI
on uvicorn); workstations and commands reach it with their users' own names and passwords through
:class:`~readerapp.server.client.StudyClient`, which offers the methods of
:class:`~readerapp.study.service.StudyService` that the commands and the study window use, so the
same command code runs against a local study or a server (:func:`open_study` picks one).

Every request is authenticated (a bearer token from ``POST /api/login`` that expires, and lapses
after the study's inactivity time) and every rule is checked in the server by the study service;
a reader receives only the de-identified images of his own worklist and his own reads. Files
travel in chunks that resume (HTTP Range down, offsets up) and are checked by SHA-256.
"""

from __future__ import annotations

import os
from typing import Any


def open_study(db: str | None = None, storage: str | os.PathLike[str] | None = None,
               server: str | None = None, *, cafile: str | None = None,
               audit_key: str | os.PathLike[str] | None = None) -> Any:
    """The study backend a command or window uses: a :class:`StudyClient` for ``server`` (a URL),
    else the local :class:`~readerapp.study.service.StudyService` on ``db``/``storage``."""
    if server:
        from ..study.errors import StudyError

        if db or storage:
            raise StudyError("give either --server (a study server) or --db/--storage (a local study), not both")
        from .client import StudyClient

        return StudyClient(server, cafile=cafile)
    from ..study.service import StudyService

    return StudyService(db, storage, audit_key=audit_key)
