"""Workstation benchmarks for ``python -m readerapp.bench`` (run in a child process there).

Measured in the real window, offscreen: brush event to updated numbers (median, 95th
percentile), slice-change redraw, opening a 512x512x300 DICOM series to the first image (and to
the label overlay, i.e. with auto-segmentation), and the process's peak memory with a
512x512x600 scan open and edited.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .headless import configure_headless


def synthetic_chest(shape: tuple[int, int, int], spacing=(0.7, 0.7, 1.0), seed: int = 0):  # type: ignore[no-untyped-def]
    """A chest-like CT and label map built slice by slice (no full-volume float temporaries)."""
    from ..labels import Label
    from ..volume import CTVolume

    nz, ny, nx = shape
    rng = np.random.default_rng(seed)
    hu = np.empty(shape, np.int16)
    labels = np.zeros(shape, np.uint8)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    yy = (yy - ny / 2) / (ny / 2)
    xx = (xx - nx / 2) / (nx / 2)
    body = (xx / 0.9) ** 2 + (yy / 0.65) ** 2 <= 1
    lesions = [(0.5, -0.45, 0.05, 0.12, Label.GGO, -550), (0.35, 0.45, 0.1, 0.1, Label.CONSOLIDATION, 20),
               (0.65, 0.4, -0.1, 0.08, Label.GGO, -600)]
    noise = rng.normal(0, 15, size=(8, ny, nx)).astype(np.int16)
    for z in range(nz):
        t = (z + 0.5) / nz
        scale = max(0.0, 1 - ((t - 0.5) / 0.45) ** 2) ** 0.5
        sl = np.full((ny, nx), -1000, np.int16)
        sl[body] = 40
        lab = np.zeros((ny, nx), np.uint8)
        if scale > 0:
            for cx in (-0.42, 0.42):
                lung = ((xx - cx) / (0.3 * scale + 1e-6)) ** 2 + (yy / (0.45 * scale + 1e-6)) ** 2 <= 1
                sl[lung] = -850
                lab[lung] = Label.LUNG
            for zc, cx, cy, r, value, h in lesions:
                rr = r ** 2 - (t - zc) ** 2 * 4
                if rr > 0:
                    m = ((xx - cx) ** 2 + (yy - cy) ** 2 <= rr) & (lab > 0)
                    sl[m] = h
                    lab[m] = value
        hu[z] = sl + noise[z % 8]
        labels[z] = lab
    vol = CTVolume(hu=hu, spacing=spacing, series_uid=f"2.25.9{seed}{nz}")
    return vol, labels


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


class _RenderCounter:
    """Counts renders of the given views (an observer on each render window)."""

    def __init__(self, views) -> None:  # type: ignore[no-untyped-def]
        self.n = 0
        self.last_end: dict[int, float] = {}  # view index -> perf_counter at its last render's end
        for i, v in enumerate(views):
            v.canvas.GetRenderWindow().AddObserver(
                "EndEvent", lambda *_a, i=i: self._count(i))

    def _count(self, i: int) -> None:
        self.n += 1
        self.last_end[i] = time.perf_counter()


def _settle(app) -> None:  # type: ignore[no-untyped-def]
    """Deliver everything queued (posted events, zero timers) until nothing is left."""
    from PySide6 import QtCore

    flags = QtCore.QEventLoop.ProcessEventsFlag.AllEvents
    for _ in range(4):
        app.processEvents(flags)
        app.sendPostedEvents()
    app.processEvents(flags)


def run_event_benchmarks(app, w, labels: np.ndarray, *, n_moves: int = 120,  # type: ignore[no-untyped-def]
                         n_notches: int = 40) -> dict[str, Any]:
    """Latencies through real Qt mouse and wheel events on the view widgets (not the controller).

    Each figure is the time from delivering the event (``QApplication.sendEvent`` of a
    QMouseEvent or QWheelEvent to the view's canvas, as the window system would) until every
    redraw it caused has been rendered (all posted events and zero timers delivered).
    """
    from PySide6 import QtCore, QtGui

    from ..editing import Mode
    from .state import Tool

    Qt = QtCore.Qt
    c = w.controller
    axial = w.slice_views[0]
    canvas = axial.canvas
    counter = _RenderCounter(w.slice_views)  # the 3D view renders on its own (worker results)
    out: dict[str, Any] = {}
    nz = labels.shape[0]
    z = nz // 2
    w.state.set_cursor((z, labels.shape[1] // 2, int(labels.shape[2] * 0.29)))
    _settle(app)
    lung = np.argwhere(labels[w.state.cursor[0]] == 1)
    y0, x0 = lung[len(lung) // 3]

    def widget_point(zyx) -> QtCore.QPointF:  # type: ignore[no-untyped-def]
        wx, wy = axial.to_world(zyx)
        r = canvas.renderer
        r.SetWorldPoint(wx, wy, 0.0, 1.0)
        r.WorldToDisplay()
        dx, dy, _ = r.GetDisplayPoint()
        dpr = canvas.devicePixelRatioF()
        return QtCore.QPointF(dx / dpr, (canvas.height() * dpr - 1 - dy) / dpr)

    def mouse(kind, pos, button=Qt.MouseButton.NoButton, buttons=Qt.MouseButton.NoButton):  # type: ignore[no-untyped-def]
        ev = QtGui.QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons,
                               Qt.KeyboardModifier.NoModifier)
        app.sendEvent(canvas, ev)

    def wheel(pos, notches: int = 1) -> QtGui.QWheelEvent:  # type: ignore[no-untyped-def]
        return QtGui.QWheelEvent(pos, canvas.mapToGlobal(pos), QtCore.QPoint(0, 0),
                                 QtCore.QPoint(0, 120 * notches), Qt.MouseButton.NoButton,
                                 Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)

    E = QtCore.QEvent.Type
    c.set_tool(Tool.BRUSH)
    c.set_mode(Mode.GGO)
    c.set_option(radius_mm=10.0)
    _settle(app)
    # A zigzag that keeps reaching unpainted lung, so (nearly) every move changes voxels.
    path = [(z, y0 - 30 + 60 * i / n_moves, x0 + 25 * np.sin(i / 4)) for i in range(n_moves)]
    pts = [widget_point(p) for p in path]
    # Hover with the brush (no button): what it costs and how many renders it causes.
    hover, renders0 = [], counter.n
    for p in pts[:40]:
        t0 = time.perf_counter()
        mouse(E.MouseMove, p)
        _settle(app)
        hover.append(1000 * (time.perf_counter() - t0))
    out["events_brush_hover_median_ms"] = _pct(hover, 50)
    out["events_renders_per_hover"] = (counter.n - renders0) / 40
    # A brush stroke through real mouse events.
    left = Qt.MouseButton.LeftButton
    mouse(E.MouseButtonPress, pts[0], left, left)
    _settle(app)
    moves, moves_cpu, renders0 = [], [], counter.n
    for p in pts[1:]:
        t0, c0 = time.perf_counter(), time.process_time()
        mouse(E.MouseMove, p, Qt.MouseButton.NoButton, left)
        _settle(app)
        moves.append(1000 * (time.perf_counter() - t0))
        moves_cpu.append(1000 * (time.process_time() - c0))
    out["events_renders_per_brush_move"] = (counter.n - renders0) / max(len(pts) - 1, 1)
    mouse(E.MouseButtonRelease, pts[-1], left, Qt.MouseButton.NoButton)
    _settle(app)
    out["events_brush_move_to_redrawn_slice_median_ms"] = _pct(moves, 50)
    out["events_brush_move_to_redrawn_slice_p95_ms"] = _pct(moves, 95)
    # CPU time of the process (all its threads) per event: what the event costs, much less
    # dependent on other programs competing for the CPUs than the wall-clock figures.
    out["events_brush_move_cpu_median_ms"] = _pct(moves_cpu, 50)
    out["events_brush_move_cpu_p95_ms"] = _pct(moves_cpu, 95)
    c.set_tool(Tool.NAVIGATE)
    _settle(app)
    # The stroke's 3D rebuild (throttled, then in a worker thread) finishes first, so its CPU
    # does not land in the wheel figures.
    vv = w.volume_view
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and (vv._timer.isActive() or (
            vv._worker is not None and vv._worker.is_alive())):
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.01)
    _settle(app)
    # Wheel notches one at a time: event to all three slice views redrawn.
    centre = widget_point((z, labels.shape[1] // 2, labels.shape[2] // 2))
    notch, notch_cpu, notch_axial, renders0 = [], [], [], counter.n
    for i in range(n_notches):
        ev = wheel(centre, 1 if (i // 10) % 2 == 0 else -1)
        t0, c0 = time.perf_counter(), time.process_time()
        app.sendEvent(canvas, ev)
        _settle(app)
        notch.append(1000 * (time.perf_counter() - t0))
        notch_cpu.append(1000 * (time.process_time() - c0))
        if counter.last_end.get(0, 0.0) >= t0:  # the view under the mouse, drawn first
            notch_axial.append(1000 * (counter.last_end[0] - t0))
    out["events_wheel_notch_to_redrawn_views_median_ms"] = _pct(notch, 50)
    out["events_wheel_notch_to_redrawn_views_p95_ms"] = _pct(notch, 95)
    out["events_wheel_notch_to_axial_redrawn_median_ms"] = _pct(notch_axial, 50)
    out["events_wheel_notch_to_axial_redrawn_p95_ms"] = _pct(notch_axial, 95)
    out["events_wheel_notch_cpu_median_ms"] = _pct(notch_cpu, 50)
    out["events_wheel_notch_cpu_p95_ms"] = _pct(notch_cpu, 95)
    out["events_renders_per_wheel_notch"] = (counter.n - renders0) / n_notches
    # 20 notches queued at once (a fast wheel while a redraw runs): posted, then delivered.
    queued = []
    for rep in range(3):
        z_before = w.state.cursor[0]
        renders0 = counter.n
        t0 = time.perf_counter()
        for _ in range(20):
            app.postEvent(canvas, wheel(centre, 1 if rep % 2 == 0 else -1))
        _settle(app)
        queued.append(1000 * (time.perf_counter() - t0))
        out["events_renders_for_20_queued_notches"] = counter.n - renders0
        out["events_slices_moved_by_20_queued_notches"] = abs(w.state.cursor[0] - z_before)
    out["events_20_queued_wheel_notches_ms"] = _pct(queued, 50)
    with contextlib.suppress(OSError):
        out["load_average_1min"] = os.getloadavg()[0]  # other programs' share of the CPUs
    return out


def run_gui_benchmarks(
    shape: tuple[int, int, int] = (600, 512, 512),
    open_shape: tuple[int, int, int] = (300, 512, 512),
    *,
    window_size: tuple[int, int] = (1600, 1000),
    n_dabs: int = 120,
    with_segmentation: bool = True,
) -> dict[str, Any]:
    """Run the workstation benchmarks; returns numbers keyed with their units."""
    configure_headless()
    from PySide6 import QtCore, QtWidgets

    from ..editing import Mode
    from ..editing.session import LabelOrigin, Prepared
    from ..io.dicom_write import write_synthetic_series
    from .main_window import MainWindow
    from .state import Tool

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["readerapp-bench"])
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="readerapp-guibench-") as tmp:
        tmpd = Path(tmp)
        settings = QtCore.QSettings(str(tmpd / "s.ini"), QtCore.QSettings.Format.IniFormat)

        def window() -> MainWindow:
            w = MainWindow(backend="auto", journal_root=tmpd / "journal", restore_policy="discard",
                           interactive=False, settings=settings)
            w.resize(*window_size)
            w.show()
            app.processEvents()
            return w

        def wait(signal, timeout_s: float = 900) -> None:  # type: ignore[no-untyped-def]
            loop = QtCore.QEventLoop()
            signal.connect(loop.quit)
            QtCore.QTimer.singleShot(int(timeout_s * 1000), loop.quit)
            loop.exec()

        # 1. A 512x512x600 scan open: brush latency, slice redraw, memory.
        vol, labels = synthetic_chest(shape, seed=2)
        w = window()
        t0 = time.perf_counter()
        w.open_series(Prepared(vol, labels, LabelOrigin.FILE))
        wait(w.session_ready)
        out["open_prepared_600_s"] = time.perf_counter() - t0
        s = w.controller.session
        assert s is not None, "the benchmark scan did not open"
        out["backend"] = s.backend
        c = w.controller
        c.set_tool(Tool.BRUSH)
        c.set_mode(Mode.GGO)
        c.set_option(radius_mm=10.0)
        z = shape[0] // 2
        w.state.set_cursor((z, shape[1] // 2, int(shape[2] * 0.29)))
        app.processEvents()
        lung = np.argwhere(labels[z] == 1)
        y0, x0 = lung[len(lung) // 3]
        c.event_latencies.clear()
        frame = []
        c.begin_paint(0, (z, y0, x0))
        for i in range(n_dabs):
            t1 = time.perf_counter()
            c.move_paint((z, y0 + 20 * np.sin(i / 9), x0 + 20 * np.cos(i / 7)))
            app.processEvents()  # the slice redraw queued by the edit
            frame.append(time.perf_counter() - t1)
        c.end_paint()
        lat = [1000 * v for v in c.event_latencies[1:]]
        out["brush_to_numbers_median_ms"] = _pct(lat, 50)
        out["brush_to_numbers_p95_ms"] = _pct(lat, 95)
        out["brush_to_redrawn_slice_median_ms"] = _pct([1000 * v for v in frame], 50)
        out["brush_to_redrawn_slice_p95_ms"] = _pct([1000 * v for v in frame], 95)
        t1 = time.perf_counter()
        w.volume_view.rebuild()  # after the stroke: only the touched slabs are redone
        out["surface_update_after_stroke_3d_ms"] = 1000 * (time.perf_counter() - t1)
        t1 = time.perf_counter()
        w.volume_view.reset(wait=True)  # a new label map: everything downsampled again
        out["surface_full_rebuild_3d_ms"] = 1000 * (time.perf_counter() - t1)
        redraw = []
        for i in range(30):
            t1 = time.perf_counter()
            w.state.step_slice(0, 1 if i < 15 else -1)
            _settle(app)  # the redraw is scheduled, not done in the call
            redraw.append(1000 * (time.perf_counter() - t1))
        out["slice_change_redraw_median_ms"] = _pct(redraw, 50)
        out["slice_change_redraw_p95_ms"] = _pct(redraw, 95)
        out["undo_history_kb"] = s.editor.history_bytes / 1024
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["peak_rss_mb_with_600_slices_open"] = rss / (1024 * 1024 if sys.platform == "darwin" else 1024)
        out["volume_and_labels_mb"] = (vol.hu.nbytes + labels.nbytes) / 2**20
        out.update(run_event_benchmarks(app, w, labels, n_moves=n_dabs))
        w.close()
        del w, s, vol, labels
        app.processEvents()

        # 2. Opening a 512x512x300 DICOM series: first image, then labels (auto-segmentation).
        vol, _ = synthetic_chest(open_shape, seed=1)
        series = tmpd / "series"
        write_synthetic_series(vol, series)
        del vol
        w = window()
        t0 = time.perf_counter()
        w.first_image.connect(lambda: out.setdefault("open_to_first_image_s", time.perf_counter() - t0))
        w.open_series([str(series)])
        wait(w.first_image)
        if with_segmentation:
            wait(w.session_ready)
            out["open_to_labels_shown_s"] = time.perf_counter() - t0
        else:
            w.cancel_loading()
        while w._thread is not None:
            app.processEvents()
        w.close()

    return out


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run_gui_benchmarks(), indent=2))
