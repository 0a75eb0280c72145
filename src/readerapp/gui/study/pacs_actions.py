"""The administrator's PACS actions in study mode: retrieve a scan straight into the blinded study,
and send a case's final read back to the site's PACS.

Both are the ``readerapp pacs retrieve --subject --visit`` and ``readerapp pacs send-read --case``
commands behind menu items, with a progress dialog (cancel resumes later) and errors in one
place. The network and file work runs in a worker thread; the window stays responsive.
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtWidgets

from ...errors import ReaderAppError


class StudyPacs(QtCore.QObject):
    """PACS menu actions of one logged-in administrator (see :class:`StudyWorkstation`)."""

    sent = QtCore.Signal(str)  # the case code, once its final read(s) reached the PACS
    failed = QtCore.Signal(str)

    def __init__(self, workstation: Any, menu: QtWidgets.QMenu, *, settings: Any = None,
                 client_factory: Any = None) -> None:
        super().__init__(workstation)
        self.ws = workstation
        self._settings = settings
        #: ``factory(node_name) -> PacsClient``; the configured nodes by default (tests: a stand-in).
        self.client_factory = client_factory
        self.browser: Any = None
        self._worker: Any = None
        self.progress: QtWidgets.QProgressDialog | None = None
        menu.addSeparator()
        self.retrieve_action = menu.addAction("Retrieve from PACS into the study…", self.retrieve_into_study)
        self.retrieve_action.setToolTip("Query the PACS, retrieve a CT series and import it as a subject's "
                                        "visit (de-identified on arrival)")
        self.send_action = menu.addAction("Send final read to PACS…", lambda: self.send_final_read())
        app = QtWidgets.QApplication.instance()
        if app is not None:  # never quit under a running send (a QThread must not outlive the app)
            app.aboutToQuit.connect(self.wait)
        self.send_action.setToolTip("Send the selected case's final read(s) back to the PACS as DICOM "
                                    "SEG + SR referencing the original series (audited as an export)")

    def settings(self) -> Any:
        if self._settings is None:
            from ...settings import load_settings

            self._settings = load_settings()
        return self._settings

    def _client(self, node: str | None) -> Any:
        if self.client_factory is not None:
            return self.client_factory(node)
        from ...pacs import open_client

        return open_client(node, self.settings())

    # --- retrieve into the study ----------------------------------------------------------------
    def retrieve_into_study(self) -> Any:
        """The PACS browser in study mode; the worklist refreshes after each import."""
        from ..pacs_dialog import PacsBrowser

        try:
            settings = self.settings()
        except ReaderAppError as exc:
            self.ws._error(str(exc))
            return None
        self.browser = PacsBrowser(self.ws.window, settings, study=(self.ws.service, self.ws.actor),
                                   client_factory=self.client_factory)
        self.browser.case_imported.connect(self._imported)
        self.browser.show()
        return self.browser

    def _imported(self, code: str) -> None:
        self.ws.panel.status.setText(f"Imported from the PACS as case {code}")
        self.ws.refresh()

    # --- send a final read back -------------------------------------------------------------------
    def selected_code(self) -> str | None:
        row = self.ws.panel.table.currentRow()
        codes = self.ws.panel.codes
        return codes[row] if 0 <= row < len(codes) else None

    def send_final_read(self, code: str | None = None, node: str | None = None) -> bool:
        """Send ``code``'s (default: the selected case's) final read(s); False if refused at once."""

        code = code or self.selected_code()
        if not code:
            self.ws._error("Select a case in the worklist first.")
            return False
        if self._worker is not None and self._worker.isRunning():
            self.ws._error("A send to the PACS is still running.")
            return False
        from ...pacs.study_actions import final_reads_to_send, send_final_reads

        service, actor = self.ws.service, self.ws.actor
        try:
            prepared = final_reads_to_send(service, actor, code)
            staging = self.settings().effective_staging_dir()
            client = self._client(node)
        except ReaderAppError as exc:
            self.ws._error(str(exc))
            return False

        def job(progress: Any) -> str:
            import tempfile
            from pathlib import Path

            try:
                with tempfile.TemporaryDirectory(prefix="readerapp-results-") as tmp:
                    sent = send_final_reads(client, service, actor, code, staging, Path(tmp),
                                            prepared=prepared, progress=progress)
            finally:
                client.close()
            return (f"Sent case {code}'s final read(s) as {sent.result.sent} object(s) (SEG + SR) to "
                    f"{client.name}")

        from ..pacs_dialog import _Worker

        self.progress = QtWidgets.QProgressDialog(f"Sending case {code} to the PACS …", "Cancel", 0, 1000,
                                                  self.ws.window)
        self.progress.setWindowTitle("Send final read to PACS")
        self.progress.setMinimumDuration(0)
        worker = _Worker(job, self)
        worker.progressed.connect(self._on_progress)
        worker.succeeded.connect(lambda msg: self._done(code, msg))
        worker.failed.connect(lambda msg: self._failed(code, msg))
        self.progress.canceled.connect(worker.cancel)
        self._worker = worker
        self.ws.panel.status.setText(f"Sending case {code} to the PACS …")
        worker.start()
        return True

    def _on_progress(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            self.progress.setValue(int(fraction * 1000))
            self.progress.setLabelText(message)

    def _finish(self) -> None:
        if self.progress is not None:
            self.progress.reset()
            self.progress.deleteLater()
            self.progress = None

    def _done(self, code: str, message: str) -> None:
        self._finish()
        self.ws.panel.status.setText(message)
        self.ws.window.statusBar().showMessage(message, 10000)
        self.sent.emit(code)

    def _failed(self, code: str, message: str) -> None:
        self._finish()
        if message.startswith("cancelled"):
            message = "cancelled: send again to resume"
        self.ws._error(f"Case {code} was not sent to the PACS: {message}")
        self.failed.emit(message)

    def wait(self, ms: int = 30000) -> None:
        """Let a running send finish (closing the window, tests)."""
        if self._worker is not None:
            self._worker.wait(ms)
