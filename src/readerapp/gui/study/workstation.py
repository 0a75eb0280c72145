"""Study mode of the workstation window: a worklist dock, save/sign to the study, adjudication,
log-out on inactivity.

:class:`StudyWorkstation` attaches to an existing :class:`~readerapp.gui.main_window.MainWindow`
(adding a dock and a "Study" menu at run time), so the window itself stays study-agnostic. The
window title shows the case code only; the de-identified case folder is what the window loads, so
nothing it can show names the patient, site, date or (in per-scan mode) visit.
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtWidgets

from ...errors import ReaderAppError
from ...study.status import ReadStatus
from .dialogs import LoginDialog, SignatureDialog, ask_text, table_item


class WorklistPanel(QtWidgets.QWidget):
    """The reader's (or adjudicator's) worklist: codes and status, nothing identifying."""

    open_requested = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        self.who = QtWidgets.QLabel("")
        lay.addWidget(self.who)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["#", "case", "status"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.cellDoubleClicked.connect(lambda r, _c: self._open_row(r))
        lay.addWidget(self.table)
        self.open_button = QtWidgets.QPushButton("Open")
        self.open_button.clicked.connect(lambda: self._open_row(self.table.currentRow()))
        self.save_button = QtWidgets.QPushButton("Save to study")
        self.sign_button = QtWidgets.QPushButton("Sign…")
        self.adjudicate_button = QtWidgets.QPushButton("Adjudicate…")
        self.correct_button = QtWidgets.QPushButton("Sign corrected read…")
        self.correct_button.setToolTip("Sign the labels and form now in the window (read A, corrected) "
                                       "as the final read")
        self.buttons = QtWidgets.QGridLayout()  # two columns: the dock stays as narrow as the tools
        self.buttons.setSpacing(3)
        lay.addLayout(self.buttons)
        self.show_buttons([self.open_button, self.save_button, self.sign_button, self.adjudicate_button,
                           self.correct_button])
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.codes: list[str] = []

    def show_buttons(self, shown: list[QtWidgets.QPushButton]) -> None:
        """Lay out the buttons the role uses, two a row; the others are hidden."""
        for b in self.findChildren(QtWidgets.QPushButton):
            if b not in shown:
                self.buttons.removeWidget(b)
                b.setVisible(False)
        for i, b in enumerate(shown):
            self.buttons.addWidget(b, i // 2, i % 2)
            b.setVisible(True)

    def set_rows(self, rows: list[tuple[str, str, str]]) -> None:
        self.table.setRowCount(len(rows))
        self.codes = [r[1] for r in rows]
        for i, (pos, code, status) in enumerate(rows):
            for j, text in enumerate((pos, code, status)):
                item = table_item(text)
                item.setToolTip(text)  # the status may be longer than the column
                self.table.setItem(i, j, item)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(1)

    def _open_row(self, row: int) -> None:
        if 0 <= row < len(self.codes):
            self.open_requested.emit(self.codes[row])


class _ActivityFilter(QtCore.QObject):
    """Mouse and key input count as activity for the inactivity timeout."""

    def __init__(self, actor: Any) -> None:
        super().__init__()
        self.actor = actor

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802
        if ev.type() in (QtCore.QEvent.Type.MouseButtonPress, QtCore.QEvent.Type.KeyPress,
                         QtCore.QEvent.Type.Wheel, QtCore.QEvent.Type.MouseMove):
            self.actor.activity()
        return False


class StudyWorkstation(QtCore.QObject):
    """Glue between a MainWindow and a StudyService for one logged-in person."""

    locked = QtCore.Signal()
    case_opened = QtCore.Signal(str)

    def __init__(self, window, service, actor, *, interactive: bool = True, idle_check_ms: int = 5000,  # type: ignore[no-untyped-def]
                 pacs_settings: Any = None, pacs_client_factory: Any = None):
        super().__init__(window)
        self.window, self.service, self.actor = window, service, actor
        self.interactive = interactive
        self.code: str | None = None
        self.needs_fibrosis = False
        self.panel = WorklistPanel()
        self.dock = QtWidgets.QDockWidget("Study worklist", window)
        self.dock.setObjectName("studyWorklistDock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)
        admin = actor.role.value == "admin"
        menu = window.menuBar().addMenu("&Study")
        self.menu = menu
        menu.addAction("Refresh worklist", self.refresh)
        if not admin:
            menu.addAction("Save read to study", lambda: self.save_to_study())
            menu.addAction("Sign read…", lambda: self.sign())
        menu.addAction("Log out", self.lock)
        #: The administrator's PACS actions (retrieve into the study, send a final read back).
        self.pacs: Any = None
        if admin:
            from .pacs_actions import StudyPacs

            self.pacs = StudyPacs(self, menu, settings=pacs_settings, client_factory=pacs_client_factory)
            shown = []
            for text, act in (("Retrieve from PACS…", self.pacs.retrieve_action),
                              ("Send final read to PACS…", self.pacs.send_action)):
                b = QtWidgets.QPushButton(text, self.panel)
                b.setToolTip(act.toolTip())
                b.clicked.connect(act.trigger)
                shown.append(b)
            self.panel.show_buttons(shown)
        else:
            self.panel.open_requested.connect(self.open_case)
        # Lambdas: clicked(bool) would otherwise arrive as the reason or password argument.
        self.panel.save_button.clicked.connect(lambda: self.save_to_study())
        self.panel.sign_button.clicked.connect(lambda: self.sign())
        self.panel.adjudicate_button.clicked.connect(lambda: self.adjudicate())
        p = self.panel
        if actor.role.value == "adjudicator":
            p.show_buttons([p.open_button, p.adjudicate_button, p.correct_button])
        elif not admin:
            p.show_buttons([p.open_button, p.save_button, p.sign_button])
        self.panel.correct_button.clicked.connect(lambda: self.sign_correction())
        self.based_on: int | None = None
        window.session_ready.connect(self._on_session_ready)
        self._filter = _ActivityFilter(actor)
        app = QtWidgets.QApplication.instance()
        if app is not None:
            app.installEventFilter(self._filter)
        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self.check_idle)
        self._timer.start(idle_check_ms)
        self.refresh()

    # --- worklist -----------------------------------------------------------------------------
    def refresh(self) -> None:
        try:
            if self.actor.role.value == "adjudicator":
                items = self.service.adjudication_worklist(self.actor)
                rows = [(str(i), e.code, e.status) for i, e in enumerate(items, 1)]
            elif self.actor.role.value == "admin":  # every case, to send final reads back
                rows = [(str(i), o.code, f"{o.status} ({o.subject} {o.visit})")
                        for i, o in enumerate(self.service.case_originals(self.actor), 1)]
            else:
                rows = [(str(e.position), e.code, e.status + (f" ({e.visit})" if e.visit else ""))
                        for e in self.service.worklist(self.actor)]
        except ReaderAppError as exc:
            self._error(str(exc))
            return
        self.panel.who.setText(f"{self.actor.name} ({self.actor.role.value})")
        self.panel.set_rows(rows)

    def open_case(self, code: str) -> None:
        """Load the de-identified case, with the reader's latest own read if there is one."""
        try:
            folder = self._case_folder(code)
            labels = None
            self._form = None
            if self.actor.role.value == "reader":
                mine = self.service.my_reads(self.actor, code)
                if mine:
                    labels, self._form = mine[-1].labels_path, mine[-1].form
                entry = next(e for e in self.service.worklist(self.actor) if e.code == code)
                self.needs_fibrosis = entry.needs_fibrosis
            else:  # the adjudicator starts from read A; the dialog shows both side by side
                view = self.service.adjudication_view(self.actor, code)
                labels, self._form = view.read_a.labels_path, view.read_a.form
                self.needs_fibrosis = view.needs_fibrosis
                self.based_on = view.read_a.id
        except ReaderAppError as exc:
            self._error(str(exc))
            return
        self.code = code
        self.window.open_series([str(folder)], labels_path=str(labels) if labels else None)

    def _case_folder(self, code: str) -> Any:
        """The case's folder; from a study server with a progress dialog while it downloads."""
        from pathlib import Path

        from ...server.client import StudyClient

        if not isinstance(self.service, StudyClient):
            return self.service.case_folder(self.actor, code)
        dlg = QtWidgets.QProgressDialog(f"Fetching case {code} from the study server …", "", 0, 1000, self.window)
        dlg.setWindowTitle("Study server")
        dlg.setCancelButton(None)  # type: ignore[arg-type]
        dlg.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
        dlg.setMinimumDuration(400)

        def progress(done: int, total: int) -> None:
            dlg.setValue(int(1000 * done / max(total, 1)))
            QtWidgets.QApplication.processEvents()

        try:
            return Path(self.service.case_folder(self.actor, code, progress=progress))
        finally:
            dlg.reset()
            dlg.deleteLater()

    def _on_session_ready(self) -> None:
        if self.code is None:
            return
        from ...forms import ReadForm

        form = ReadForm.from_dict(self._form) if self._form else ReadForm.blank(self.needs_fibrosis)
        self.window.forms.set_form(form, day90=self.needs_fibrosis)
        self.window.forms.day90.setEnabled(False)  # the study decides which scans get the form
        self.window.setWindowTitle(f"ReaderApp — case {self.code}")
        self.case_opened.emit(self.code)

    # --- saving and signing ---------------------------------------------------------------------
    def save_to_study(self, reason: str | None = None) -> Any:
        """Store the current labels and form as the reader's read (a new version after signing)."""
        session = self.window.controller.session
        if session is None or self.code is None:
            self._error("Open a case from the worklist first.")
            return None
        try:
            mine = self.service.my_reads(self.actor, self.code)
            if mine and mine[-1].status == ReadStatus.SIGNED and not reason:
                if not self.interactive:
                    self._error("This read is signed: a change needs a reason.")
                    return None
                reason = ask_text(self.window, "Change a signed read",
                                  "Your read is signed. Saving makes a new version; why?")
                if not reason:
                    return None
            labels, form, code = session.labels.copy(), self.window.forms.form(), self.code
            source, measurements = session.source, list(session.measurements)
            # In a worker thread: the window stays responsive (busy bar) while the database and
            # the study files are written; edits and closing wait for it.
            info = self.window.run_saving(
                lambda: self.service.save_read(self.actor, code, labels, form, reason=reason,
                                               source=source, measurements=measurements),
                "Saving the read to the study…")
        except ReaderAppError as exc:
            self._error(str(exc))
            return None
        session.mark_saved()  # stored in the study: nothing left for the journal to restore
        self.panel.status.setText(f"Saved: case {self.code}, version {info.version} (draft)")
        self.refresh()
        return info

    def sign(self, password: str | None = None) -> Any:
        """Save, then sign the draft (the password again, with the study's stated meaning)."""
        info = self.save_to_study()
        if info is None:
            return None
        if password is None:
            dlg = SignatureDialog(self.actor.name, self.service.config.signature_meaning,
                                  f"Sign your read of case {self.code} (version {info.version})", self.window)
            if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted:
                return None
            password = dlg.password.text()
        try:
            signed = self.service.sign_read(self.actor, info.id, password)
        except ReaderAppError as exc:
            self._error(str(exc))
            return None
        self.panel.status.setText(f"Signed: case {self.code}, version {signed.version}")
        self.refresh()
        return signed

    def adjudicate(self) -> Any:
        from .adjudication import AdjudicationDialog

        row = self.panel.table.currentRow()
        code = self.panel.codes[row] if 0 <= row < len(self.panel.codes) else self.code
        if not code:
            self._error("Select a case to adjudicate.")
            return None
        try:
            dlg = AdjudicationDialog(self.service, self.actor, code, self.window)
        except ReaderAppError as exc:
            self._error(str(exc))
            return None
        dlg.decided.connect(lambda _info: self.refresh())
        if self.interactive:
            dlg.exec()
        return dlg

    def sign_correction(self, password: str | None = None, reason: str | None = None) -> Any:
        """Adjudicator: sign the window's (corrected) labels and form as the final read."""
        session = self.window.controller.session
        if session is None or self.code is None or self.based_on is None:
            self._error("Open a discordant case from the worklist first.")
            return None
        if reason is None:
            if not self.interactive:
                self._error("A final read needs a reason.")
                return None
            reason = ask_text(self.window, "Final read", "Why is this corrected read the final read?")
            if not reason:
                return None
        if password is None:
            dlg = SignatureDialog(self.actor.name, self.service.config.adjudication_meaning,
                                  f"Sign the corrected read as the final read of case {self.code}", self.window)
            if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted:
                return None
            password = dlg.password.text()
        try:
            info = self.service.adjudicate(self.actor, self.code, password, reason, based_on=self.based_on,
                                           labels=session.labels.copy(), form=self.window.forms.form())
        except ReaderAppError as exc:
            self._error(str(exc))
            return None
        self.panel.status.setText(f"Final read signed for case {self.code}")
        self.refresh()
        return info

    # --- log-out ----------------------------------------------------------------------------------
    def check_idle(self) -> None:
        if self.actor.expired():
            self.lock()

    def lock(self) -> None:
        """Log out: close the case, clear the worklist; interactive windows ask to log in again."""
        self.actor.logout()
        self._timer.stop()
        if self.window.controller.session is not None:
            self.window.controller.session.close()
            self.window.controller.set_session(None)  # nothing displayed either
            self.window.stack.setCurrentIndex(0)  # the placeholder: no image stays on screen
        self.code = None
        self.panel.set_rows([])
        self.panel.who.setText("logged out")
        self.window.setWindowTitle("ReaderApp — logged out")
        self.locked.emit()
        if self.interactive:
            dlg = LoginDialog(self.service, self.window, "Logged out after inactivity: log in again")
            if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted and dlg.actor is not None:
                self.actor = dlg.actor
                self._filter.actor = dlg.actor
                self._timer.start()
                self.refresh()

    def _error(self, message: str) -> None:
        self.panel.status.setText(message)
        self.window.show_error(message)


def run_study_window(service) -> int:  # type: ignore[no-untyped-def]
    """``readerapp study window``: log in, then the workstation in study mode."""
    import os
    import sys

    from ..headless import configure_headless

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and sys.platform.startswith("linux"):
        configure_headless()
    from ..main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["readerapp"])
    app.setApplicationName("ReaderApp")
    login = LoginDialog(service)
    if login.exec() != QtWidgets.QDialog.DialogCode.Accepted or login.actor is None:
        return 1
    win = MainWindow()
    StudyWorkstation(win, service, login.actor)
    win.show()
    return int(app.exec())
