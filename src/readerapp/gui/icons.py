"""Icons of the window's actions (``resources/icons/*.svg``) and the Help menu's pages
(``resources/help/*.html``)."""

from __future__ import annotations

from functools import cache
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from ..assets import AssetError, resource, root

#: Action name -> icon file (without .svg).
ACTION_ICONS = {
    "open": "open", "save": "save", "undo": "undo", "redo": "redo",
    "tool_navigate": "navigate", "tool_brush": "brush", "tool_fill": "fill",
    "tool_remove": "remove", "preset_lung": "lung", "preset_mediastinum": "mediastinum",
    "preset_bone": "bone", "preset_scan": "scan_window", "help": "help", "cine": "cine",
    "crosshair_toggle": "crosshair", "slice_first": "slice_first", "slice_last": "slice_last",
    "layout_2x2": "layout_2x2", "layout_1+3": "layout_1+3", "layout_1x1": "layout_1x1",
    "maximize": "maximize", "go_to_image": "go_to_image", "interpolate": "interpolate", "overlay_toggle": "overlay",
}

#: Help menu entries: (title, page under resources/help/).
HELP_PAGES = (("Reading guide", "index.html"), ("Display and PACS habits", "display.html"))


@cache
def icon(name: str) -> QtGui.QIcon:
    return QtGui.QIcon(str(resource("icons", f"{name}.svg")))


def apply_icons(actions: dict[str, QtGui.QAction]) -> None:
    for name, a in actions.items():
        file = ACTION_ICONS.get(name)
        if file is not None:
            a.setIcon(icon(file))


class HelpPages(QtWidgets.QDialog):
    """The HTML help pages, with their links, in one browser."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, page: str = "index.html") -> None:
        super().__init__(parent)
        self.setWindowTitle("ReaderApp help")
        self.browser = QtWidgets.QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        self.browser.setSearchPaths([str(root("resources") / "help")])
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.browser)
        self.resize(720, 640)
        self.show_page(page)

    def show_page(self, page: str) -> None:
        resource("help", page)  # a clear error if the page is missing
        self.browser.setSource(QtCore.QUrl(page))


def install_help_menu(window: Any) -> None:
    """Add the HTML help pages to the window's Help menu."""
    menu = next((m.menu() for m in window.menuBar().actions() if m.text() == "&Help"), None)
    if menu is None:
        menu = window.menuBar().addMenu("&Help")
    menu.addSeparator()
    window.help_actions = {}
    for title, page in HELP_PAGES:
        a = menu.addAction(title)
        a.triggered.connect(lambda _=False, p=page: open_help(window, p))
        window.help_actions[page] = a


def open_help(window: Any, page: str) -> HelpPages | None:
    try:
        dlg = HelpPages(window, page)
    except AssetError as exc:
        window.show_error(str(exc))
        return None
    window.help_dialog = dlg
    dlg.show()
    return dlg
