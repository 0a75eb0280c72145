"""A dark reading-room theme (low glare next to the images), sized in points so it scales on
HiDPI and 4K screens with Qt's device-pixel ratio."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

STYLE = """
QWidget { font-size: 10pt; }
QMainWindow, QDockWidget, QTabWidget::pane { background: #202327; }
QLabel#viewHeader { background: #2c3138; color: #d8dee6; padding: 2px 6px; font-weight: bold; }
QLabel#placeholder { color: #9aa4b0; font-size: 14pt; }
QLabel#backendLabel { color: #7fd1ff; font-weight: bold; }
QLabel#severityTotal { color: #ffd60a; }
QLabel#missingLabel { color: #ffb4a0; }
QLabel#definition { color: #aab3bd; font-size: 9pt; }
QToolButton:checked { background: #3d6fa8; color: white; border-radius: 3px; }
QToolButton { padding: 3px 6px; }
QGroupBox { font-weight: bold; margin-top: 1.1em; }
QGroupBox::title { subcontrol-origin: margin; left: 6px; }
QTableWidget { gridline-color: #3a3f46; }
"""


def apply_theme(app: QtWidgets.QApplication | None) -> None:
    if app is None or app.property("readerapp_theme"):
        return
    app.setStyle("Fusion")
    pal = QtGui.QPalette()
    C = QtGui.QColor
    roles = QtGui.QPalette.ColorRole
    for role, colour in [
        (roles.Window, C(32, 35, 39)), (roles.WindowText, C(222, 226, 230)),
        (roles.Base, C(24, 26, 29)), (roles.AlternateBase, C(40, 44, 49)),
        (roles.Text, C(222, 226, 230)), (roles.Button, C(46, 51, 57)),
        (roles.ButtonText, C(222, 226, 230)), (roles.Highlight, C(61, 111, 168)),
        (roles.HighlightedText, C(255, 255, 255)), (roles.ToolTipBase, C(250, 250, 230)),
        (roles.ToolTipText, C(20, 20, 20)), (roles.PlaceholderText, C(140, 146, 153)),
    ]:
        pal.setColor(role, colour)
    app.setPalette(pal)
    app.setStyleSheet(STYLE)
    app.setProperty("readerapp_theme", True)
