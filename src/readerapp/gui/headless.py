"""Environment for running the window without a display (CI, ``--screenshot``).

Must run before PySide6 or VTK is imported: Qt's offscreen platform, no X display, and VTK's
OSMesa render window (STACK.md: the combination that worked 10 times out of 10).
"""

from __future__ import annotations

import os
import sys


def configure_headless(force: bool = False) -> bool:
    """Switch to offscreen rendering when there is no display (or ``force``). Returns whether it did."""
    if not force and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    if not force and sys.platform in ("win32", "darwin"):
        return False
    qtw = sys.modules.get("PySide6.QtWidgets")
    if qtw is not None and qtw.QApplication.instance() is not None:
        return False  # too late: the platform is chosen when the application object is made
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.pop("DISPLAY", None)
    os.environ.pop("WAYLAND_DISPLAY", None)
    os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkOSOpenGLRenderWindow"
    return True
