"""Tests never touch the real user's settings or data: the autouse fixture in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.gui


def test_default_qsettings_and_the_window_write_only_into_the_test_folder(_isolated_user_folders, qtbot):
    from PySide6 import QtCore

    from readerapp.gui.main_window import MainWindow

    home = _isolated_user_folders.resolve()
    plain = QtCore.QSettings("ReaderApp", "ReaderApp")
    assert Path(plain.fileName()).resolve().is_relative_to(home), plain.fileName()
    w = MainWindow(backend="numpy", journal_root=home / "j", interactive=True)  # its default settings
    qtbot.addWidget(w)
    assert Path(w.settings.fileName()).resolve().is_relative_to(home)
    w.settings.setValue("probe", 1)
    w.settings.sync()
    assert Path(w.settings.fileName()).is_file()
    w.controller.session = None
    w.interactive = False
    w.close()


def test_the_window_stores_no_scan_path_in_its_settings(make_window, qtbot, tmp_path):
    from PySide6 import QtCore, QtGui

    ini = tmp_path / "settings.ini"  # the file make_window's settings use
    old = QtCore.QSettings(str(ini), QtCore.QSettings.Format.IniFormat)
    old.setValue("recent", ["/scans/DOE_JOHN_1956/CT"])  # what an older version left behind
    old.setValue("last_dir", "/scans/DOE_JOHN_1956")
    old.sync()
    del old
    w = make_window()
    folder = tmp_path / "DOE_JANE_chest"
    folder.mkdir()
    (folder / "x.txt").write_text("not dicom")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(folder))])
    drop = QtGui.QDropEvent(QtCore.QPointF(50, 50), QtCore.Qt.DropAction.CopyAction, mime,
                            QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(w.load_failed, timeout=30_000):
        w.dropEvent(drop)
    qtbot.waitUntil(lambda: w._thread is None, timeout=10_000)
    assert w.recent() == [str(folder)]  # offered again in this session, from memory
    w.settings.setValue("window/probe", 1)
    w.settings.sync()
    text = ini.read_text()
    assert "probe" in text  # the file is the one the window writes
    assert "DOE_" not in text and "recent" not in text and "last_dir" not in text


def test_the_readers_limits_are_remembered(make_window):
    w = make_window()
    w.tools_panel.confirm_ml.setValue(55.0)
    w.tools_panel.fill_radius.setValue(12.0)
    assert w.controller.settings.confirm_ml == 55.0
    w2 = make_window()  # the same settings file
    assert (w2.controller.settings.confirm_ml, w2.controller.settings.fill_radius_mm) == (55.0, 12.0)
    assert w2.tools_panel.confirm_ml.value() == 55.0
