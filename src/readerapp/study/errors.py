"""Errors of the study workflow, all :class:`readerapp.errors.StudyError` so the CLI and the GUI
show them as one short message.

:class:`StudyPermissionError` is also a built-in :class:`PermissionError`, so callers that only know
Python's hierarchy still recognise "you may not do that".
"""

from __future__ import annotations

from ..errors import StudyError


class StudyConfigError(StudyError):
    """The study configuration file is malformed or names impossible settings."""


class StudyPermissionError(StudyError, PermissionError):
    """The acting user's role (or ownership) does not allow the action."""


class AuthenticationError(StudyError):
    """Unknown user or wrong password (the message never says which, on purpose)."""


class AccountLockedError(AuthenticationError):
    """Too many failed log-ins: the account is locked for a while."""


class SessionExpiredError(AuthenticationError):
    """The log-in was idle longer than the study's inactivity timeout; log in again."""


class StudyStateError(StudyError):
    """The action does not fit the current state (a signed read, a case not discordant...)."""


class ImportDataError(StudyError):
    """A manifest, folder or DICOM file to import is unusable; the message names it."""


__all__ = [
    "StudyError",
    "StudyConfigError",
    "StudyPermissionError",
    "AuthenticationError",
    "AccountLockedError",
    "SessionExpiredError",
    "StudyStateError",
    "ImportDataError",
]
