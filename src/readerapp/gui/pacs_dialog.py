"""A small PACS browser: find CT studies on a configured node, retrieve a series with progress and
a cancel button, and hand the staged folder to whoever opens it.

In study mode (``study=(service, admin)``) the dialog asks for the subject and visit too and
imports the retrieved series straight into the blinded study (de-identified on arrival, the
identifiable staged copy removed), as ``readerapp pacs retrieve --subject --visit`` does.

All PACS work runs in a worker thread through :mod:`readerapp.pacs`; the dialog only gathers
inputs, shows results and reports errors (one place, the status line). A cancelled or failed
retrieve resumes where it stopped when started again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from ..errors import ReaderAppError
from ..progress import Cancelled
from .uiload import load_into


class _Worker(QtCore.QThread):
    """Runs one callable off the GUI thread; ``progress`` raises Cancelled once cancel() was asked."""

    progressed = QtCore.Signal(float, str)
    succeeded = QtCore.Signal(object)
    failed = QtCore.Signal(str)

    def __init__(self, job: Any, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._job = job
        self._cancel = False

    def cancel(self) -> None:
        self._cancel = True

    def progress(self, fraction: float, message: str) -> None:
        if self._cancel:
            raise Cancelled()
        self.progressed.emit(fraction, message)

    def run(self) -> None:
        try:
            self.succeeded.emit(self._job(self.progress))
        except Cancelled:
            self.failed.emit("cancelled: run Retrieve again to resume")
        except ReaderAppError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug: say so, never crash the window
            self.failed.emit(f"internal error ({exc.__class__.__name__}: {exc})")


#: The named widgets of ui/pacs_browser.ui, bound as attributes of the dialog.
_FORM_WIDGETS = ("node", "patient_id", "study_date", "accession", "search_button", "studies",
                 "series", "importTarget", "subject", "visit", "route", "progress",
                 "retrieve_button", "cancel_button", "pacsStatus")


class PacsBrowser(QtWidgets.QDialog):
    """Query a node, pick a CT series, retrieve it. ``series_retrieved(folder)`` when complete;
    in study mode ``case_imported(code)`` once the series is imported into the study."""

    series_retrieved = QtCore.Signal(object)
    case_imported = QtCore.Signal(str)

    node: QtWidgets.QComboBox
    patient_id: QtWidgets.QLineEdit
    study_date: QtWidgets.QLineEdit
    accession: QtWidgets.QLineEdit
    search_button: QtWidgets.QPushButton
    studies: QtWidgets.QTableWidget
    series: QtWidgets.QTableWidget
    importTarget: QtWidgets.QWidget  # noqa: N815 (Designer object names)
    subject: QtWidgets.QLineEdit
    visit: QtWidgets.QComboBox
    route: QtWidgets.QComboBox
    progress: QtWidgets.QProgressBar
    retrieve_button: QtWidgets.QPushButton
    cancel_button: QtWidgets.QPushButton
    pacsStatus: QtWidgets.QLabel  # noqa: N815

    def __init__(self, parent: QtWidgets.QWidget | None = None, settings: Any = None, *,
                 study: tuple[Any, Any] | None = None, client_factory: Any = None) -> None:
        super().__init__(parent)
        from ..settings import load_settings

        self.study = study
        self.setWindowTitle("Retrieve from PACS into the study" if study else "Retrieve from PACS")
        self.setObjectName("pacsBrowser")
        self.settings = settings or load_settings()
        self._client_factory = client_factory
        self._worker: _Worker | None = None
        self._kind = ""
        self._client: Any = None
        self.last_results: list[Any] = []

        # The form is ui/pacs_browser.ui (Designer); behaviour stays here.
        form = load_into(self, "pacs_browser.ui", bind=_FORM_WIDGETS)
        self.status = self.pacsStatus
        retrieve_row = form.findChild(QtWidgets.QHBoxLayout, "retrieveRow")
        if retrieve_row is not None:
            retrieve_row.setStretchFactor(self.progress, 1)
        for name, node in self.settings.pacs.items():
            self.node.addItem(f"{name}: {node.describe()}", name)
        if self.settings.default_pacs:
            self.node.setCurrentIndex(max(self.node.findData(self.settings.default_pacs), 0))
        self.studies.setColumnCount(5)
        self.studies.setHorizontalHeaderLabels(["Date", "Patient ID", "Accession", "Description", "Series"])
        self.series.setColumnCount(4)
        self.series.setHorizontalHeaderLabels(["#", "Description", "Images", "Series UID"])
        for table in (self.studies, self.series):
            table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
            table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
            table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
            table.horizontalHeader().setStretchLastSection(True)
        if study is not None:
            for v in study[0].config.visits:
                self.visit.addItem(v, v)
            self.visit.setCurrentIndex(-1)
            self.retrieve_button_text = "Retrieve and import"
            self.retrieve_button.setText(self.retrieve_button_text)
        else:
            self.retrieve_button_text = "Retrieve"
            self.importTarget.hide()
        if not self.settings.pacs:
            self._show("no PACS is configured: add one in the first-run dialog or with 'readerapp pacs add'", False)
            self.search_button.setEnabled(False)

        self.search_button.clicked.connect(self.search)
        self.studies.itemSelectionChanged.connect(self._study_selected)
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button.clicked.connect(self.cancel)
        self.node.currentIndexChanged.connect(self._node_changed)
        self._study_hits: list[Any] = []
        self._series_hits: list[Any] = []
        self._node_changed()
        self.resize(820, 640)

    # -- helpers ----------------------------------------------------------------------------
    def _show(self, text: str, ok: bool = True) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("" if ok else "color: #c0392b;")

    def _node_changed(self) -> None:
        self.route.clear()
        name = self.node.currentData()
        if name is None:
            return
        if self.settings.pacs[name].kind == "dicomweb":
            self.route.addItem("WADO-RS", "wado")
        else:
            self.route.addItem("C-GET", "get")
            self.route.addItem("C-MOVE", "move")
        self._client = None

    def client(self) -> Any:
        if self._client is None:
            from ..pacs import open_client

            factory = self._client_factory or (lambda name: open_client(name, self.settings))
            self._client = factory(self.node.currentData())
        return self._client

    def _busy(self, busy: bool) -> None:
        for w in (self.search_button, self.retrieve_button, self.node):
            w.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self._show(message)

    def _retrieving(self) -> bool:
        return self._worker is not None and self._worker.isRunning() and self._kind == "retrieve"

    def _start(self, job: Any, on_done: Any, kind: str = "query") -> None:
        if self._worker is not None:
            self._worker.wait()  # a query's worker is just returning from its last signal
        worker = _Worker(job, self)
        worker.progressed.connect(self._on_progress)
        worker.succeeded.connect(on_done)
        worker.failed.connect(lambda msg: self._show(msg, False))
        worker.finished.connect(lambda: self._busy(False) if self._worker is worker else None)
        self._worker, self._kind = worker, kind
        self._busy(True)
        worker.start()

    # -- actions ----------------------------------------------------------------------------
    def search(self) -> None:
        try:
            client = self.client()
        except ReaderAppError as exc:
            self._show(str(exc), False)
            return
        pid, date, acc = self.patient_id.text().strip(), self.study_date.text().strip(), self.accession.text().strip()
        self._show("searching ...")
        self._start(
            lambda progress: client.find_studies(patient_id=pid, study_date=date, accession_number=acc),
            self._show_studies,
        )

    def _show_studies(self, hits: list[Any]) -> None:
        self._study_hits = hits
        self.studies.setRowCount(len(hits))
        for r, h in enumerate(hits):
            for c, v in enumerate((h.study_date, h.patient_id, h.accession_number, h.description, h.n_series)):
                self.studies.setItem(r, c, QtWidgets.QTableWidgetItem("" if v is None else str(v)))
        self.series.setRowCount(0)
        self._show(f"{len(hits)} CT stud{'y' if len(hits) == 1 else 'ies'} found")
        if hits:
            self.studies.selectRow(0)

    def _study_selected(self) -> None:
        rows = self.studies.selectionModel().selectedRows()
        if not rows or self._retrieving():
            return
        study = self._study_hits[rows[0].row()]
        client = self.client()
        self._start(lambda progress: client.find_series(study.study_uid), self._show_series)

    def _show_series(self, hits: list[Any]) -> None:
        self._series_hits = hits
        self.series.setRowCount(len(hits))
        for r, h in enumerate(hits):
            for c, v in enumerate((h.series_number, h.description, h.n_instances, h.series_uid)):
                self.series.setItem(r, c, QtWidgets.QTableWidgetItem("" if v is None else str(v)))
        if hits:
            self.series.selectRow(0)

    def retrieve(self) -> None:
        rows = self.series.selectionModel().selectedRows()
        if not rows:
            self._show("choose a series first", False)
            return
        hit = self._series_hits[rows[0].row()]
        from ..pacs.pull import retrieve_series

        subject, visit = self.subject.text().strip(), self.visit.currentData()
        if self.study is not None and (not subject or not visit):
            self._show("give the subject ID and the visit to import the series as", False)
            return
        if self.study is not None:  # refuse a duplicate before the transfer, not after it
            from ..pacs.study_actions import refuse_duplicate

            try:
                refuse_duplicate(self.study[0], self.study[1], subject, visit)
            except ReaderAppError as exc:
                self._show(str(exc), False)
                return
        client, route = self.client(), self.route.currentData() or ""
        dest = self.settings.effective_staging_dir()
        self.progress.setValue(0)
        study = self.study

        def job(progress: Any) -> Any:
            if study is None:
                return retrieve_series(client, hit.study_uid, hit.series_uid, dest, route=route,
                                       progress=progress)
            from ..pacs.study_actions import retrieve_into_study

            result, code = retrieve_into_study(client, study[0], study[1], hit.study_uid, hit.series_uid,
                                               dest, subject, visit, route=route, progress=progress)
            return result if code is None else (result, code)

        self._start(job, self._retrieved, kind="retrieve")

    def _retrieved(self, result: Any) -> None:
        if isinstance(result, tuple):  # study mode: retrieved and imported
            result, code = result
            self.last_results.append(result)
            self.progress.setValue(1000)
            self._show(f"{result.received} image(s) retrieved and imported as case {code} "
                       "(the identifiable staged copy is removed)")
            self.subject.clear()
            self.case_imported.emit(code)
            return
        self.last_results.append(result)
        if result.complete:
            self.progress.setValue(1000)
            self._show(f"{result.received} retrieved, {result.skipped} already present: {result.folder}")
            self.series_retrieved.emit(Path(result.folder))
        else:
            self._show(f"incomplete ({len(result.failed)} missing): Retrieve again to resume", False)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def done(self, r: int) -> None:  # closing waits for the worker so no thread outlives the dialog
        if self._worker is not None:
            self._worker.cancel()
            self._worker.wait(30000)
        if self._client is not None:
            self._client.close()
        super().done(r)
