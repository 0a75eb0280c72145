"""Tests never touch the real user's settings or data: the autouse fixture in tests/conftest.py."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui


def _real_home() -> Path:
    return Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()


def test_home_xdg_and_data_folders_are_temporary(_isolated_user_folders):
    import platformdirs

    from readerapp import settings
    from readerapp.editing.journal import default_root

    home = _isolated_user_folders.resolve()
    assert Path.home().resolve() == home != _real_home()
    for p in (settings.config_dir(), settings.data_dir(), default_root(),
              Path(platformdirs.user_config_dir("readerapp")), Path(platformdirs.user_data_dir("readerapp"))):
        assert p.resolve().is_relative_to(home), p


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
