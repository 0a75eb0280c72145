"""Headless GUI fixtures: offscreen Qt, OSMesa VTK (set here, before any window exists)."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.pop("DISPLAY", None)
os.environ.pop("WAYLAND_DISPLAY", None)
os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkOSOpenGLRenderWindow"

import pytest  # noqa: E402

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")
pytest.importorskip("vtkmodules.vtkRenderingOpenGL2", reason="VTK is not installed")


@pytest.fixture()
def make_window(qtbot, tmp_path):
    """Factory for a real MainWindow with its own journal folder and settings, no modal dialogs."""
    from PySide6 import QtCore

    from readerapp.gui.main_window import MainWindow

    made = []

    def make(journal_root=None, restore_policy="restore", backend="numpy", size=(1280, 860)):
        settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
        w = MainWindow(
            backend=backend,
            journal_root=journal_root or tmp_path / "journal",
            restore_policy=restore_policy,
            interactive=False,
            settings=settings,
        )
        qtbot.addWidget(w)
        w.resize(*size)
        w.show()
        qtbot.waitExposed(w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


@pytest.fixture()
def open_scan(qtbot):
    """Open a series folder or a CTVolume in a window and wait until it is ready."""

    def open_(window, source, labels=None, timeout_ms=120_000):
        with qtbot.waitSignal(window.session_ready, timeout=timeout_ms):
            window.open_series(source, labels_path=labels)
        qtbot.waitUntil(lambda: window._thread is None, timeout=10_000)
        return window.controller.session

    return open_
