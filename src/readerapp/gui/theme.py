"""A dark reading-room theme (low glare next to the images), sized in points so it scales on
HiDPI and 4K screens with Qt's device-pixel ratio."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets


def style_sheet() -> str:
    """The application style sheet, ``resources/style.qss`` (see :mod:`readerapp.assets`)."""
    from ..assets import read_text

    return read_text("style.qss")


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
    app.setStyleSheet(style_sheet())
    app.setProperty("readerapp_theme", True)
