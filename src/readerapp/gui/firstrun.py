"""The first-run dialog: keep the embedded defaults, or point the program at a site's PostgreSQL
study database and its PACS.

Shown once, when neither the user nor IT has configured anything (:func:`readerapp.settings.is_first_run`).
Saving (or "Use local defaults") writes the settings file, so it does not come back; passwords go to
the private credentials file, never to the settings. Everything here can be changed later with
``readerapp settings`` (docs/SITES.md). The workstation calls :func:`run_first_run_if_needed` once
the ``QApplication`` exists and before the main window opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6 import QtCore, QtWidgets

from ..settings import (
    PacsNode,
    Settings,
    SettingsError,
    load_settings,
    save_settings,
    store_password,
)
from .uiload import load_into


@dataclass
class DatabaseChoice:
    """The dialog's database fields; ``host`` empty means the local SQLite study."""

    host: str = ""
    port: int = 5432
    database: str = "readerapp"
    user: str = ""
    password: str = ""
    storage: str = ""

    def url(self) -> str:
        if not self.host:
            return ""
        user = f"{self.user}@" if self.user else ""
        return f"postgresql+psycopg://{user}{self.host}:{self.port}/{self.database}"


def check_database(choice: DatabaseChoice, timeout_s: int = 5) -> str:
    """Connect once; a short message on success, :class:`SettingsError` saying why not."""
    if not choice.host:
        return "local SQLite study: nothing to test"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(choice.url()).set(password=choice.password or None)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": timeout_s})
        with engine.connect() as conn:
            version = conn.execute(text("select version()")).scalar()
        engine.dispose()
    except Exception as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingsError(f"cannot connect to {choice.host}:{choice.port}/{choice.database}: {first}") from exc
    return f"connected: {str(version).split(',')[0]}"


#: The named widgets of ui/settings.ui, bound as attributes of the dialog.
_SETTINGS_WIDGETS = ("db_local", "db_server", "db_study_server", "study_server_url",
                     "study_server_ca", "db_host", "db_port", "db_name", "db_user",
                     "db_password", "db_storage", "db_test", "pacs_box", "pacs_name", "pacs_kind",
                     "pacs_url", "pacs_user", "pacs_password", "pacs_host", "pacs_port", "pacs_ae",
                     "local_ae", "local_port", "pacs_test")


class FirstRunDialog(QtWidgets.QDialog):
    """Database and PACS, two groups; Save writes the settings, Skip keeps the defaults."""

    db_local: QtWidgets.QRadioButton
    db_server: QtWidgets.QRadioButton
    db_study_server: QtWidgets.QRadioButton
    study_server_url: QtWidgets.QLineEdit
    study_server_ca: QtWidgets.QLineEdit
    db_host: QtWidgets.QLineEdit
    db_port: QtWidgets.QSpinBox
    db_name: QtWidgets.QLineEdit
    db_user: QtWidgets.QLineEdit
    db_password: QtWidgets.QLineEdit
    db_storage: QtWidgets.QLineEdit
    db_test: QtWidgets.QPushButton
    pacs_box: QtWidgets.QGroupBox
    pacs_name: QtWidgets.QLineEdit
    pacs_kind: QtWidgets.QComboBox
    pacs_url: QtWidgets.QLineEdit
    pacs_user: QtWidgets.QLineEdit
    pacs_password: QtWidgets.QLineEdit
    pacs_host: QtWidgets.QLineEdit
    pacs_port: QtWidgets.QSpinBox
    pacs_ae: QtWidgets.QLineEdit
    local_ae: QtWidgets.QLineEdit
    local_port: QtWidgets.QSpinBox
    pacs_test: QtWidgets.QPushButton
    intro: QtWidgets.QLabel
    settingsHost: QtWidgets.QWidget  # noqa: N815 (Designer object names)
    firstRunStatus: QtWidgets.QLabel  # noqa: N815
    buttons: QtWidgets.QDialogButtonBox

    def __init__(self, parent: QtWidgets.QWidget | None = None, settings: Settings | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("ReaderApp: first start")
        self.setObjectName("firstRunDialog")
        self.settings = settings or load_settings()
        self.saved: Settings | None = None
        # The forms are ui/firstrun.ui and ui/settings.ui (Designer); behaviour stays here.
        load_into(self, "firstrun.ui", bind=("intro", "settingsHost", "firstRunStatus", "buttons"))
        load_into(self.settingsHost, "settings.ui", bind=_SETTINGS_WIDGETS)
        for n in _SETTINGS_WIDGETS:
            setattr(self, n, getattr(self.settingsHost, n))
        self.status = self.firstRunStatus
        self.pacs_kind.addItem("DICOMweb (QIDO/WADO/STOW)", "dicomweb")
        self.pacs_kind.addItem("DICOM network (C-FIND/C-GET/C-MOVE)", "dimse")
        self.local_ae.setText(self.settings.local_ae_title)
        self.local_port.setValue(self.settings.storage_port)
        self.db_test.clicked.connect(self._on_test_db)
        self.pacs_test.clicked.connect(self._on_test_pacs)
        self.db_local.toggled.connect(self._sync)
        self.db_study_server.toggled.connect(self._sync)
        self.pacs_kind.currentIndexChanged.connect(self._sync)
        buttons = self.buttons
        self.save_button = buttons.addButton("Save", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        self.skip_button = buttons.addButton("Use local defaults", QtWidgets.QDialogButtonBox.ButtonRole.RejectRole)
        self.save_button.clicked.connect(self._on_save)
        self.skip_button.clicked.connect(self._on_skip)
        self._sync()

    def _sync(self) -> None:
        server = self.db_server.isChecked()
        for w in (self.db_host, self.db_port, self.db_name, self.db_user, self.db_password,
                  self.db_storage, self.db_test):
            w.setEnabled(server)
        for w in (self.study_server_url, self.study_server_ca):
            w.setEnabled(self.db_study_server.isChecked())
        web = self.pacs_kind.currentData() == "dicomweb"
        for w in (self.pacs_url, self.pacs_user, self.pacs_password):
            w.setEnabled(web)
        for w in (self.pacs_host, self.pacs_port, self.pacs_ae):
            w.setEnabled(not web)

    # -- values -----------------------------------------------------------------------------
    def database_choice(self) -> DatabaseChoice:
        if not self.db_server.isChecked():
            return DatabaseChoice()
        return DatabaseChoice(
            host=self.db_host.text().strip(), port=self.db_port.value(), database=self.db_name.text().strip(),
            user=self.db_user.text().strip(), password=self.db_password.text(),
            storage=self.db_storage.text().strip(),
        )

    def pacs_node(self) -> tuple[str, PacsNode] | None:
        if not self.pacs_box.isChecked():
            return None
        name = self.pacs_name.text().strip() or "pacs"
        if self.pacs_kind.currentData() == "dicomweb":
            node = PacsNode(kind="dicomweb", url=self.pacs_url.text().strip(), username=self.pacs_user.text().strip())
        else:
            node = PacsNode(kind="dimse", host=self.pacs_host.text().strip(), port=self.pacs_port.value(),
                            ae_title=self.pacs_ae.text().strip())
        node.check(name)
        return name, node

    def build_settings(self) -> Settings:
        """The settings the form describes (validated), without saving them."""
        s = load_settings()
        db = self.database_choice()
        if self.db_server.isChecked() and not db.host:
            raise SettingsError("enter the PostgreSQL server's host name, or choose the local study")
        s.database_url = db.url()
        s.study_storage = db.storage
        s.study_server = s.study_server_ca = ""
        if self.db_study_server.isChecked():
            url = self.study_server_url.text().strip()
            if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
                raise SettingsError("enter the study server's address, https://HOST:PORT")
            s.study_server, s.study_server_ca = url, self.study_server_ca.text().strip()
        if self.db_server.isChecked() and not db.storage:
            raise SettingsError("a shared database needs the shared study files folder (Study files)")
        pacs = self.pacs_node()
        if pacs is not None:
            name, node = pacs
            s.pacs[name] = node
            s.default_pacs = name
            s.local_ae_title = self.local_ae.text().strip() or "READERAPP"
            s.storage_port = self.local_port.value()
        return s

    # -- actions ----------------------------------------------------------------------------
    def _show(self, text: str, ok: bool) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("" if ok else "color: #c0392b;")

    def _on_test_db(self) -> None:
        try:
            self._show(check_database(self.database_choice()), True)
        except SettingsError as exc:
            self._show(str(exc), False)

    def _on_test_pacs(self) -> None:
        from ..errors import ReaderAppError

        try:
            pacs = self.pacs_node()
            if pacs is None:
                raise SettingsError("tick 'PACS' and fill in its fields first")
            name, node = pacs
            client: Any
            if node.kind == "dicomweb":
                from ..pacs.dicomweb import DicomWebNode

                client = DicomWebNode(name, node, self.pacs_password.text() or None)
            else:
                from ..pacs.dimse import DimseNode

                client = DimseNode(name, node, local_ae_title=self.local_ae.text().strip() or "READERAPP")
            self._show(client.echo(), True)
        except ReaderAppError as exc:
            self._show(str(exc), False)

    def _on_save(self) -> None:
        try:
            s = self.build_settings()
            save_settings(s)
            db = self.database_choice()
            if db.password:
                store_password("database", db.password)
            if s.default_pacs and self.pacs_box.isChecked() and self.pacs_password.text():
                store_password("pacs", self.pacs_password.text(), node=s.default_pacs)
        except SettingsError as exc:
            self._show(str(exc), False)
            return
        self.saved = s
        self.accept()

    def _on_skip(self) -> None:
        self.saved = save_settings_defaults()
        self.reject()


def save_settings_defaults() -> Settings:
    """Write the embedded defaults, so the first-run dialog is not shown again."""
    s = load_settings()
    save_settings(s)
    return s


def run_first_run_if_needed(parent: QtWidgets.QWidget | None = None) -> Settings | None:
    """Show the dialog (modal) on a machine with no configuration; the settings it saved, or None."""
    from ..settings import is_first_run

    if not is_first_run():
        return None
    dlg = FirstRunDialog(parent)
    dlg.setWindowModality(QtCore.Qt.WindowModality.ApplicationModal)
    dlg.exec()
    return dlg.saved
