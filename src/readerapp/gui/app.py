"""Starting the workstation: the application object, ``readerapp view``, and screenshots.

A screenshot composites each VTK view's own pixels (``vtkWindowToImageFilter``) over
``QWidget.grab()`` of the window, which cannot see them (STACK.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .headless import configure_headless


def screenshot(window, out: str | Path) -> Path:  # type: ignore[no-untyped-def]
    """Save the whole window, VTK views included, as PNG (or any format Qt writes)."""
    from PySide6 import QtCore, QtGui, QtWidgets

    QtWidgets.QApplication.processEvents()
    img = window.grab().toImage()
    painter = QtGui.QPainter(img)
    for view in window.views:
        canvas = view.canvas
        if not canvas.isVisible():
            continue
        px = canvas.pixels()
        h, w = px.shape[:2]
        qimg = QtGui.QImage(px.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()
        top_left = canvas.mapTo(window, QtCore.QPoint(0, 0))
        target = QtCore.QRect(top_left, canvas.size())
        painter.drawImage(target, qimg)
    painter.end()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # PNG at the highest compression: documentation screenshots stay small.
    if not img.save(str(out), None, 0 if out.suffix.lower() == ".png" else -1):
        from ..errors import ReaderAppError

        raise ReaderAppError(f"cannot write the screenshot {out} (unknown image type or no access)")
    return out


def _wait_for(window, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    from PySide6 import QtCore

    loop = QtCore.QEventLoop()
    window.session_ready.connect(loop.quit)
    window.load_failed.connect(loop.quit)
    QtCore.QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()


def run(
    series: list[str] | None = None,
    labels: str | None = None,
    *,
    screenshot_path: str | None = None,
    backend: str = "auto",
    restore: str = "ask",
    size: tuple[int, int] = (1600, 1000),
    slice_number: int | None = None,
) -> int:
    """Open the window (optionally on a series); with ``screenshot_path``, save and exit."""
    if screenshot_path:
        configure_headless(force=True)
    elif (
        sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        and os.environ.get("QT_QPA_PLATFORM", "") in ("", "xcb", "wayland")
    ):
        from ..errors import ReaderAppError

        raise ReaderAppError(
            "no display to open the window on (DISPLAY is not set); run it on a desktop, or use "
            "'readerapp view SERIES --screenshot OUT.png' to render it without one"
        )
    from PySide6 import QtCore, QtWidgets

    from .main_window import MainWindow

    QtWidgets.QApplication.setHighDpiScaleFactorRoundingPolicy(
        QtCore.Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["readerapp"])
    app.setApplicationName("ReaderApp")
    app.setOrganizationName("ReaderApp")
    interactive = screenshot_path is None
    win = MainWindow(
        backend=backend,
        use_journal=interactive,  # a screenshot never touches the reader's journal
        restore_policy=restore if interactive else "discard",
        interactive=interactive,
    )
    win.resize(*size)
    win.show()
    if interactive:
        # A machine with no configuration: let the site point at its database and PACS first.
        from .firstrun import run_first_run_if_needed

        run_first_run_if_needed(win)
    if series:
        win.open_series(list(series), labels_path=labels)
        if slice_number is not None and interactive:
            def go() -> None:
                win.go_to_image(slice_number)

            win.session_ready.connect(go)
    if not interactive:
        if series:
            _wait_for(win, timeout_s=600)
            win.cancel_loading()
            while win._thread is not None:  # let the worker thread end before anything else
                app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if win.errors and win.controller.session is None:
                from ..errors import ReaderAppError

                win.close()
                raise ReaderAppError(win.errors[-1])
        for _ in range(3):
            app.processEvents()
        if slice_number is not None and win.controller.display is not None:
            win.go_to_image(slice_number)
        win.refresh_views()
        if win.controller.session is not None:
            win.volume_view.rebuild()
            win._on_hover(tuple(win.state.cursor))  # show what the status bar reports
        out = screenshot(win, screenshot_path)  # type: ignore[arg-type]
        print(f"screenshot written to {out}")
        win.close()
        return 0
    return int(app.exec())
