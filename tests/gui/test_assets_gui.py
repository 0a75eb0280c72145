"""Icons, style sheet and help pages come from resources/ at run time."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


def test_icons_style_sheet_and_help_pages(make_window, qtbot):
    from PySide6 import QtWidgets

    from readerapp.assets import read_text
    from readerapp.gui.icons import ACTION_ICONS

    w = make_window()
    acts = {**w.actions_, **w.display_tools.actions}
    for name in ACTION_ICONS:
        if name in acts:
            assert not acts[name].icon().isNull(), name
            assert not acts[name].icon().pixmap(24, 24).isNull(), name  # the SVG renders
    assert not w.windowIcon().isNull()
    app = QtWidgets.QApplication.instance()
    assert "QLabel#viewHeader" in app.styleSheet()
    assert app.styleSheet().strip() == read_text("style.qss").strip()
    w.help_actions["index.html"].trigger()
    dlg = w.help_dialog
    qtbot.addWidget(dlg)
    assert "Reading a scan" in dlg.browser.toHtml()
    dlg.show_page("display.html")
    assert "MinIP" in dlg.browser.toPlainText()
