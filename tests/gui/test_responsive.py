"""The window keeps up (issue 9, item 5): coalesced wheel, one render per brush move, hover
without renders, saving and the 3D rebuild in worker threads. Driven through real Qt events."""

from __future__ import annotations

import numpy as np
import pytest
from guikit import voxel_to_widget

from readerapp.labels import Label
from readerapp.phantom import make_chest_phantom

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def phantom():
    return make_chest_phantom((40, 96, 96), (3.0, 3.0, 5.0), seed=3)


def _wheel(view, pos, notches=1):
    from PySide6 import QtCore, QtGui

    p = QtCore.QPointF(pos)
    return QtGui.QWheelEvent(p, view.canvas.mapToGlobal(p), QtCore.QPoint(0, 0),
                             QtCore.QPoint(0, 120 * notches), QtCore.Qt.MouseButton.NoButton,
                             QtCore.Qt.KeyboardModifier.NoModifier,
                             QtCore.Qt.ScrollPhase.NoScrollPhase, False)


def _renders(w):
    return [v.renders for v in w.slice_views]


def test_queued_wheel_notches_collapse_into_one_redraw(make_window, open_scan, phantom, qtbot):
    from PySide6 import QtCore

    w = make_window()
    s = open_scan(w, phantom.volume)
    axial = w.slice_views[0]
    w.state.set_cursor((10, 48, 48))
    qtbot.wait(50)
    before = _renders(w)
    pos = voxel_to_widget(axial, (10, 48, 48))
    app = QtCore.QCoreApplication.instance()
    for _ in range(12):
        app.postEvent(axial.canvas, _wheel(axial, pos))
    app.sendPostedEvents()
    qtbot.wait(50)
    assert w.state.cursor[0] == 22  # every notch counted...
    assert [a - b for a, b in zip(_renders(w), before, strict=True)] == [1, 1, 1]  # ...one redraw
    assert axial.header.text().startswith("Axial")
    assert s.labels.shape[0] == 40


def test_brush_hover_does_not_render_and_a_move_renders_once(make_window, open_scan, phantom, qtbot):
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from readerapp.editing import Mode
    from readerapp.gui.state import Tool

    w = make_window()
    s = open_scan(w, phantom.volume)
    axial = w.slice_views[0]
    z = 20
    w.state.set_cursor((z, 5, 5))
    w.controller.set_tool(Tool.BRUSH)
    w.controller.set_mode(Mode.GGO)
    w.controller.set_option(radius_mm=4.0)
    qtbot.wait(50)
    lung = np.argwhere(s.labels[z] == Label.LUNG)
    pts = [voxel_to_widget(axial, (z, *lung[len(lung) // 2 + k * 7])) for k in range(6)]
    before = _renders(w)
    for p in pts:
        QTest.mouseMove(axial.canvas, p)
        qtbot.wait(5)
    assert _renders(w) == before  # hovering changes only the mouse cursor (the brush circle)
    assert axial.canvas.cursor().shape() == QtCore.Qt.CursorShape.BitmapCursor
    left = QtCore.Qt.MouseButton.LeftButton
    QTest.mousePress(axial.canvas, left, QtCore.Qt.KeyboardModifier.NoModifier, pts[0])
    qtbot.wait(20)
    for p in pts[1:]:
        r0 = axial.renders
        QTest.mouseMove(axial.canvas, p)
        qtbot.wait(20)
        assert axial.renders - r0 == 1  # one render per brush move (was two)
    QTest.mouseRelease(axial.canvas, left, QtCore.Qt.KeyboardModifier.NoModifier, pts[-1])
    assert s.editor.undo_depth == 1


def test_save_runs_in_the_background_edits_and_close_wait(make_window, open_scan, phantom,
                                                         qtbot, tmp_path):
    from readerapp.readfile import load_read

    w = make_window()
    s = open_scan(w, phantom.volume)
    from readerapp.editing import Mode

    lung = np.flatnonzero(s.labels.ravel() == Label.LUNG)
    s.editor.apply_mode(lung[len(lung) // 2 : len(lung) // 2 + 50], Mode.GGO)
    from readerapp.forms import LOBES

    for lobe in LOBES:
        cb = w.forms.severity[lobe]
        cb.setCurrentIndex(cb.findData(1))
    assert s.modified and w.forms.missing() == []
    with qtbot.waitSignal(w.read_saved, timeout=60_000) as sig:
        assert w.save_read(tmp_path / "read", wait=False) is None  # returns at once
        assert w.saving and w.progress.isVisible() and w.progress.maximum() == 0
        depth = s.editor.undo_depth
        w.controller.undo()  # refused while the labels are being written
        assert s.editor.undo_depth == depth
        w.interactive = True  # a reader closing the window mid-save: refused, closes after
        assert not w.close()
        assert w.isVisible()
    out = sig.args[0]
    assert np.array_equal(load_read(out, s.volume).labels, s.labels)
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10_000)
    assert not w.saving and w.controller.busy is None


def test_3d_surfaces_are_built_off_the_gui_thread(make_window, open_scan, phantom, qtbot):
    w = make_window()
    open_scan(w, phantom.volume)
    vv = w.volume_view
    assert vv._worker is not None  # the rebuild after opening ran in a worker thread
    qtbot.waitUntil(lambda: all(a.GetVisibility() for a in vv.actors.values()), timeout=60_000)
    assert vv.mappers[1].GetInput().GetNumberOfPoints() > 0
