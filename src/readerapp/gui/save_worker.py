"""Saving a read in a worker thread: the window stays responsive and shows progress.

The read is written by the core (:meth:`ReadingSession.save`, durable: files are synced and
renamed into place there), only in another thread. While it runs the controller refuses edits
(the label map is being measured and written) and the window refuses to close until it is done.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PySide6 import QtCore

from ..errors import ReaderAppError

log = logging.getLogger(__name__)


class SaveWorker(QtCore.QObject):
    saved = QtCore.Signal(object)  # the read folder (Path)
    failed = QtCore.Signal(str)
    done = QtCore.Signal()

    def __init__(self, session: Any, folder: str | Path, form: Any, require_fibrosis: bool) -> None:
        super().__init__()
        self.session = session
        self.folder = folder
        self.form = form
        self.require_fibrosis = require_fibrosis
        self.seconds = 0.0
        self.out: Path | None = None  # the read folder, once saved

    @QtCore.Slot()
    def run(self) -> None:
        t0 = time.perf_counter()
        try:
            out = self.session.save(self.folder, self.form, require_fibrosis=self.require_fibrosis)
        except (ReaderAppError, OSError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 (never a traceback to the reader; logged)
            log.exception("saving the read failed")
            self.failed.emit(f"unexpected error: {exc}")
        else:
            self.seconds = time.perf_counter() - t0
            self.out = Path(out)
            self.saved.emit(self.out)
        finally:
            self.done.emit()


def start_save(parent: QtCore.QObject, worker: SaveWorker | CallWorker) -> QtCore.QThread:
    thread = QtCore.QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.done.connect(thread.quit)
    thread.start()
    return thread


class CallWorker(QtCore.QObject):
    """Runs one call (a study database save) in a worker thread; ``result`` or ``error``."""

    done = QtCore.Signal()

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None

    @QtCore.Slot()
    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 (handed back to the GUI thread, re-raised there)
            self.error = exc
        finally:
            self.done.emit()
