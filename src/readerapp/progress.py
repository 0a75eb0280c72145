"""Progress reporting and cancellation shared by the command line, the GUI and batch jobs.

Long work takes a ``progress(fraction, message)`` callable; a GUI's cancel button makes that
callable raise :class:`Cancelled`, which unwinds the work cleanly between stages.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised from a progress callback to stop long work between stages."""


def no_progress(fraction: float, message: str) -> None:
    """The default: report nothing."""


def scaled(progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """A callback mapping [0, 1] onto [start, end] of a parent's progress."""

    def inner(fraction: float, message: str) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return inner
