"""One small hierarchy of errors whose messages name the file or value and say what to do.

The command line and the GUI catch :class:`ReaderAppError` at one boundary and show its message;
anything else is a bug and gets a traceback only under ``--debug``.
"""

from __future__ import annotations


class ReaderAppError(Exception):
    """Base of every error that is the input's fault, not the program's."""


class SeriesError(ReaderAppError):
    """A DICOM file or series cannot be measured (and cannot safely be corrected)."""


class UnmeasurableError(SeriesError):
    """A series that loads but cannot give the protocol's endpoints (one slice, no lung found,
    an implausibly small lung): refused rather than reported as a real 0 %."""


class LabelMapError(ReaderAppError):
    """A label map does not fit its CT (grid, values, file format)."""


class BackendUnavailableError(ReaderAppError):
    """A compute backend (for example CuPy) was asked for but cannot run here."""


class StudyError(ReaderAppError):
    """A study-workflow rule was broken (permissions, state, configuration)."""


class PacsError(ReaderAppError):
    """A PACS node refused, timed out or answered something unusable."""
