"""Using the window as a reader would: orientation on screen, the mouse after zoom and pan and at
the volume's edge, every keyboard shortcut of the help page, text size on a high-DPI screen."""

from __future__ import annotations

import numpy as np
import pytest
from guikit import drag, voxel_to_widget

from readerapp.labels import Label

pytestmark = pytest.mark.gui

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _session(window, direction=IDENTITY, shape=(10, 40, 48)):
    """A session on a small volume with a bright marker at the low-x, low-y, low-z corner."""
    from readerapp.editing.session import Prepared, ReadingSession
    from readerapp.volume import CTVolume

    hu = np.full(shape, -850, np.int16)
    hu[:3, :6, :6] = 400
    vol = CTVolume(hu=hu, spacing=(2.0, 2.0, 4.0), series_uid="1.2.826.0.1.77", direction=direction)
    labels = np.zeros(shape, np.uint8)
    labels[:, 4:36, 4:44] = Label.LUNG
    s = ReadingSession(Prepared(vol, labels, "file"), backend="numpy", journal_root=window.journal_root)
    s.start_journal()
    window.set_session(s)
    return s


def _bright_quadrant(img: np.ndarray) -> tuple[str, str]:
    """Where (top/bottom, left/right) the bright marker is in an image whose rows run bottom-up."""
    ys, xs = np.nonzero(img > 200)
    rows, cols = img.shape
    return ("top" if ys.mean() > rows / 2 else "bottom"), ("left" if xs.mean() < cols / 2 else "right")


@pytest.mark.parametrize("direction, expected", [
    # x = 0 is the patient's right, y = 0 anterior, z = 0 inferior (LPS, head first)
    (IDENTITY, [("top", "left"), ("bottom", "left"), ("bottom", "left")]),
    # columns towards the patient's right, slices towards the feet: mirrored back on screen
    ((-1.0, 0, 0, 0, 1.0, 0, 0, 0, -1.0), [("top", "right"), ("top", "right"), ("top", "left")]),
])
def test_views_follow_the_radiological_convention(make_window, qtbot, direction, expected):
    w = make_window(size=(1000, 700))
    s = _session(w, direction)
    w.state.set_cursor((1, 2, 2))
    got = []
    for v in w.slice_views:
        v.refresh()
        hu2d, _ = v.slice_arrays()
        got.append(_bright_quadrant(hu2d))
        assert [t.GetInput() for t in v.letters] == list(
            (("R", "L", "A", "P"), ("R", "L", "S", "I"), ("A", "P", "S", "I"))[v.axis])
    assert got == expected
    # The mouse lands where the voxel is drawn, mirrored or not: paint exactly there.
    from readerapp.editing import Mode
    from readerapp.gui.state import Tool

    w.controller.set_tool(Tool.BRUSH)
    w.controller.set_mode(Mode.GGO)
    w.controller.set_option(radius_mm=1.0)
    for v, target in zip(w.slice_views, [(5, 10, 30), (3, 20, 12), (7, 30, 40)], strict=True):
        w.state.set_cursor(target)
        before = s.labels.copy()
        drag(qtbot, v, [target])
        changed = np.argwhere(s.labels != before)
        assert [tuple(c) for c in changed] == [target], v.header.text()
    # The 3D view is mirrored the same way (its camera looks at an LPS-ordered image).
    from vtkmodules.util.numpy_support import vtk_to_numpy

    s.labels[0:3, 10:14, 6:12] = Label.GGO
    w.volume_view.reset(wait=True)
    img = w.volume_view.image
    nx, ny, nz = img.GetDimensions()
    arr = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(nz, ny, nx)
    zz, _, xx = np.nonzero(arr == Label.GGO)
    flipped = direction != IDENTITY
    assert (xx.mean() > nx / 2) == flipped and (zz.mean() > nz / 2) == flipped
    # Coronal and sagittal keep the slice spacing: 4 mm slices are drawn 2x as tall as 2 mm pixels.
    cor = w.slice_views[1]
    a = voxel_to_widget(cor, (0, 20, 0))
    b = voxel_to_widget(cor, (9, 20, 9))
    assert abs(abs(a.y() - b.y()) - 2 * abs(a.x() - b.x())) <= 2


def test_brush_after_zoom_and_pan_and_at_the_edge(make_window, qtbot):
    from readerapp.editing import Mode
    from readerapp.gui.state import Tool

    w = make_window(size=(1000, 700))
    s = _session(w)
    ax = w.slice_views[0]
    w.state.set_cursor((5, 20, 24))
    ax.zoom(2.5)
    ax.pan(40, -25)
    w.controller.set_tool(Tool.BRUSH)
    w.controller.set_mode(Mode.CONSOLIDATION)
    w.controller.set_option(radius_mm=1.0)
    for target in [(5, 12, 20), (5, 18, 30)]:
        before = s.labels.copy()
        drag(qtbot, ax, [target])
        assert [tuple(c) for c in np.argwhere(s.labels != before)] == [target]
    # The lung reaches the volume's edge; painting there (half the brush outside) is fine.
    w.controller.set_mode(Mode.LUNG_ADD)
    w.controller.set_option(radius_mm=5.0)
    ax.fit()
    before = s.labels.copy()
    drag(qtbot, ax, [(5, 0, 0), (5, 0, 47), (5, 39, 47)])
    assert s.labels[5, 0, 0] == Label.LUNG and s.labels[5, 39, 47] == Label.LUNG
    assert (s.labels != before).sum() > 100 and (s.labels[:5] == before[:5]).all()
    # Past the canvas's image (outside the volume): nothing changes, nothing breaks.
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    before = s.labels.copy()
    corner = QtCore.QPoint(2, 2)
    QTest.mousePress(ax.canvas, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, corner)
    QTest.mouseRelease(ax.canvas, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, corner)
    assert np.array_equal(s.labels, before)


def test_every_shortcut_in_the_help_triggers_its_action(make_window, qtbot):
    """Each key the help page lists, pressed on a slice view, reaches exactly its action."""
    from PySide6 import QtGui, QtWidgets
    from PySide6.QtTest import QTest

    from readerapp.gui.actions import SPECS
    from readerapp.gui.tools_panel import help_html

    w = make_window(size=(1000, 700))
    _session(w)
    w.activateWindow()
    qtbot.waitUntil(lambda: QtWidgets.QApplication.activeWindow() is w, timeout=2000)
    ax = w.slice_views[0].canvas
    page = help_html(w.actions_)
    fired: dict[str, int] = {}
    for name, act in w.actions_.items():
        act.triggered.disconnect()  # count, do not act (no file dialogs, no quitting)
        act.triggered.connect(lambda _=False, n=name: fired.__setitem__(n, fired.get(n, 0) + 1))
    for name, (_text, keys, _tip, _c) in SPECS.items():
        for key in keys:
            assert QtGui.QKeySequence(key).toString(QtGui.QKeySequence.SequenceFormat.NativeText) in page or key in page, key
            fired.clear()
            ax.setFocus()
            seq = QtGui.QKeySequence(key)[0]
            QTest.keyClick(ax, seq.key(), seq.keyboardModifiers())
            QtWidgets.QApplication.processEvents()
            assert fired == {name: 1}, (key, fired)


def test_typing_in_the_form_does_not_switch_tools(make_window, qtbot):
    """Keys typed into the read form or the radius box stay there; Ctrl shortcuts still work."""
    from PySide6 import QtCore, QtWidgets
    from PySide6.QtTest import QTest

    from readerapp.editing import Mode
    from readerapp.gui.state import Tool

    w = make_window(size=(1000, 700))
    _session(w)
    w.activateWindow()
    qtbot.waitUntil(lambda: QtWidgets.QApplication.activeWindow() is w, timeout=2000)
    w.tabs.setCurrentWidget(w.forms)
    combo = w.forms.severity["RUL"]
    combo.setFocus()
    for key in (QtCore.Qt.Key.Key_3, QtCore.Qt.Key.Key_F, QtCore.Qt.Key.Key_B, QtCore.Qt.Key.Key_Escape):
        QTest.keyClick(combo, key)
    assert combo.currentData() == 3
    st = w.controller.settings
    assert (st.tool, st.mode) == (Tool.NAVIGATE, Mode.GGO)
    undone = []
    w.actions_["undo"].triggered.connect(lambda: undone.append(1))
    QTest.keyClick(combo, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert undone == [1]
    radius = w.tools_panel.radius
    radius.setFocus()
    radius.selectAll()
    QTest.keyClicks(radius, "12")
    QTest.keyClick(radius, QtCore.Qt.Key.Key_Return)
    assert st.radius_mm == 12.0 and st.mode is Mode.GGO and st.tool is Tool.NAVIGATE
    # Back on a view, the same keys are tool shortcuts again.
    w.slice_views[0].canvas.setFocus()
    QTest.keyClick(w.slice_views[0].canvas, QtCore.Qt.Key.Key_2)
    assert st.mode is Mode.CONSOLIDATION


def test_shift_wheel_steps_five_even_as_a_horizontal_scroll_and_buttons_have_tips(make_window):
    from PySide6 import QtCore, QtGui, QtWidgets

    w = make_window(size=(1000, 700))
    _session(w, shape=(20, 40, 48))
    ax = w.slice_views[0]
    w.state.set_cursor((5, 20, 24))
    pos = QtCore.QPointF(50, 50)
    for delta in (QtCore.QPoint(0, 120), QtCore.QPoint(120, 0)):  # vertical, then as macOS sends it
        ev = QtGui.QWheelEvent(pos, ax.canvas.mapToGlobal(pos), QtCore.QPoint(0, 0), delta,
                               QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.ShiftModifier,
                               QtCore.Qt.ScrollPhase.NoScrollPhase, False)
        QtCore.QCoreApplication.sendEvent(ax.canvas, ev)
    assert w.state.cursor[0] == 15
    # Every button of the tool panel and the toolbar says what it does and its key.
    buttons = w.tools_panel.findChildren(QtWidgets.QToolButton)
    assert len(buttons) >= 20
    for b in buttons:
        act = b.defaultAction()
        assert act is not None and act.toolTip(), b.text()
        keys = [k.toString() for k in act.shortcuts()]
        assert all(k in act.toolTip() for k in keys), act.toolTip()
    assert w.tools_panel.radius.toolTip() and w.tools_panel.opacity.toolTip()


def test_double_click_with_the_brush_maximizes_without_painting(make_window, qtbot):
    from PySide6 import QtCore, QtGui
    from PySide6.QtTest import QTest

    from readerapp.editing import Mode
    from readerapp.gui.state import Tool

    w = make_window(size=(1000, 700))
    s = _session(w)
    ax = w.slice_views[0]
    w.state.set_cursor((5, 20, 24))
    w.controller.set_tool(Tool.BRUSH)
    w.controller.set_mode(Mode.GGO)
    before = s.labels.copy()
    p = voxel_to_widget(ax, (5, 20, 24))
    left, none = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
    QTest.mouseClick(ax.canvas, left, none, p)
    assert (s.labels != before).any()  # a single click paints a dab
    pf = QtCore.QPointF(p)
    dbl = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseButtonDblClick, pf, ax.canvas.mapToGlobal(pf), left, left, none)
    QtCore.QCoreApplication.sendEvent(ax.canvas, dbl)
    QTest.mouseRelease(ax.canvas, left, none, p)
    assert np.array_equal(s.labels, before) and s.editor.undo_depth == 0
    assert w.maximized_view is ax
    # A stroke (a drag) followed later by a double-click elsewhere keeps the stroke.
    w.toggle_maximize(ax)
    drag(qtbot, ax, [(5, 20, 24), (5, 20, 30)])
    painted = s.labels.copy()
    q = QtCore.QPointF(voxel_to_widget(ax, (5, 30, 10)))
    QTest.mousePress(ax.canvas, QtCore.Qt.MouseButton.RightButton, none, q.toPoint())
    QTest.mouseRelease(ax.canvas, QtCore.Qt.MouseButton.RightButton, none, q.toPoint())
    dbl = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseButtonDblClick, q, ax.canvas.mapToGlobal(q),
                            QtCore.Qt.MouseButton.RightButton, QtCore.Qt.MouseButton.RightButton, none)
    QtCore.QCoreApplication.sendEvent(ax.canvas, dbl)
    assert np.array_equal(s.labels, painted) and s.editor.undo_depth == 1
