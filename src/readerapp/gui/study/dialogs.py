"""Small dialogs of the study workflow: log-in, electronic signature, reason for a change.

Each dialog only gathers input; the service checks it. The dialogs can be driven without a human
(``fill``/``accept``) so the tests exercise the same code path as a reader.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from ...errors import ReaderAppError
from ..uiload import load_into


class LoginDialog(QtWidgets.QDialog):
    """User name and password; on accept, ``actor`` holds the logged-in :class:`Actor`."""

    user: QtWidgets.QLineEdit
    password: QtWidgets.QLineEdit
    loginError: QtWidgets.QLabel  # noqa: N815 (the Designer object name)
    buttons: QtWidgets.QDialogButtonBox

    def __init__(self, service, parent: QtWidgets.QWidget | None = None, title: str = "ReaderApp study log-in"):  # type: ignore[no-untyped-def]
        super().__init__(parent)
        self.service = service
        self.actor = None
        self.setWindowTitle(title)
        # The form is ui/login.ui (Designer); behaviour stays here.
        load_into(self, "login.ui", bind=("user", "password", "loginError", "buttons"))
        self.error = self.loginError
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def fill(self, user: str, password: str) -> None:
        self.user.setText(user)
        self.password.setText(password)

    def accept(self) -> None:
        try:
            self.actor = self.service.login(self.user.text().strip(), self.password.text())
        except ReaderAppError as exc:
            self.password.clear()
            self.error.setText(str(exc))
            return
        self.password.clear()
        super().accept()


class SignatureDialog(QtWidgets.QDialog):
    """An electronic signature: states its meaning, asks for the password again."""

    head: QtWidgets.QLabel
    signatureMeaning: QtWidgets.QLabel  # noqa: N815 (the Designer object name)
    agree: QtWidgets.QCheckBox
    password: QtWidgets.QLineEdit
    buttons: QtWidgets.QDialogButtonBox

    def __init__(self, user_name: str, meaning: str, what: str, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Electronic signature")
        # The form is ui/signature.ui (Designer); the texts of this signature are set here.
        load_into(self, "signature.ui",
                  bind=("head", "signatureMeaning", "agree", "password", "buttons"))
        self.head.setText(f"<b>{what}</b>")
        self.meaning = self.signatureMeaning
        self.meaning.setText(meaning)
        self.agree.setText(f"I, {user_name}, sign with the meaning stated above")
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Sign")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.agree.toggled.connect(self._update)
        self.password.textChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        ok = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(self.agree.isChecked() and bool(self.password.text()))

    def fill(self, password: str) -> None:
        self.agree.setChecked(True)
        self.password.setText(password)


def ask_text(parent: QtWidgets.QWidget | None, title: str, prompt: str) -> str | None:
    """A required free-text answer (a reason); None when cancelled or left empty."""
    text, ok = QtWidgets.QInputDialog.getMultiLineText(parent, title, prompt)
    text = text.strip()
    return text if ok and text else None


def table_item(text: str, *, highlight: bool = False) -> QtWidgets.QTableWidgetItem:
    item = QtWidgets.QTableWidgetItem(text)
    item.setFlags(item.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
    if highlight:
        font = item.font()
        font.setBold(True)
        item.setFont(font)
        item.setBackground(QtCore.Qt.GlobalColor.darkYellow)
    return item
