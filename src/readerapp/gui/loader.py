"""Loading and auto-segmentation in a worker thread, with progress and cancel.

The worker only calls the core (``readerapp.editing.session``); the window stays responsive and
gets either a ready :class:`ReadingSession` (plus any journal left by a crashed session), a clear
error message, or a cancellation.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6 import QtCore

from ..editing.session import ReadingSession, prepare
from ..errors import ReaderAppError
from ..progress import Cancelled

log = logging.getLogger(__name__)


class LoadWorker(QtCore.QObject):
    progress = QtCore.Signal(float, str)
    volume_loaded = QtCore.Signal(object)  # the CT, before segmentation: shown at once
    loaded = QtCore.Signal(object)  # (ReadingSession, Recoverable | None, journal error | None)
    failed = QtCore.Signal(str)
    cancelled = QtCore.Signal()
    done = QtCore.Signal()

    def __init__(self, source, labels_path: str | Path | None, backend: str,  # type: ignore[no-untyped-def]
                 journal_root: Path | None, use_journal: bool) -> None:
        super().__init__()
        self.source = source
        self.labels_path = labels_path
        self.backend = backend
        self.journal_root = journal_root
        self.use_journal = use_journal
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def _progress(self, fraction: float, message: str) -> None:
        if self._cancel.is_set():
            raise Cancelled()
        self.progress.emit(float(fraction), message)

    @QtCore.Slot()
    def run(self) -> None:
        try:
            prepared = prepare(self.source, labels_path=self.labels_path, backend=self.backend,
                               progress=self._progress, on_volume=self.volume_loaded.emit)
            self._progress(1.0, "computing densitometry")
            session = ReadingSession(prepared, backend=self.backend,
                                     journal_root=self.journal_root, use_journal=self.use_journal)
            rec = session.recoverable()
            journal_error = None
            if rec is None:  # nothing to ask the reader: start the journal here, off the GUI
                try:
                    session.start_journal()
                except ReaderAppError as exc:
                    journal_error = str(exc)
            self.loaded.emit((session, rec, journal_error))
        except Cancelled:
            self.cancelled.emit()
        except ReaderAppError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit("Not enough memory to open this scan.")
        except Exception as exc:  # the one boundary where a bug becomes a message, not a crash
            log.exception("loading failed")
            self.failed.emit(f"Internal error while opening ({exc.__class__.__name__}: {exc}). "
                             "Please report it with the log.")
        finally:
            self.done.emit()


def start_worker(parent: QtCore.QObject, worker: LoadWorker) -> QtCore.QThread:
    thread = QtCore.QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.done.connect(thread.quit)
    thread.start()
    return thread
