"""The workstation's measuring, comparing and editing-scope tools driven through the real window."""

from __future__ import annotations

import numpy as np
import pytest
from guikit import drag

from readerapp.labels import Label

pytestmark = pytest.mark.gui


def _session(w, hu=None, uid="1.2.826.0.1.77", origin="file"):
    from readerapp.editing.session import Prepared, ReadingSession
    from readerapp.volume import CTVolume

    if hu is None:
        hu = np.full((12, 64, 64), -850, np.int16)
        hu[6, 20:40, 20:40] = np.arange(400, dtype=np.int16).reshape(20, 20) - 200
    vol = CTVolume(hu=hu, spacing=(1.0, 1.0, 2.0), series_uid=uid)
    labels = np.zeros(hu.shape, np.uint8)
    labels[:, 8:56, 8:56] = Label.LUNG
    sess = ReadingSession(Prepared(vol, labels, origin), backend="numpy", journal_root=w.journal_root)
    sess.start_journal()
    w.set_session(sess)
    return sess


def test_ruler_and_rois_measure_and_come_back_with_the_read(make_window, open_scan, qtbot, tmp_path):
    from readerapp.forms import LOBES
    from readerapp.gui.measuring import COLOUR

    w = make_window()
    s = _session(w)
    axial = w.slice_views[0]
    w.state.set_cursor((6, 30, 30))
    w.actions_["tool_ruler"].trigger()
    drag(qtbot, axial, [(6, 10, 10), (6, 20, 20), (6, 10, 40)])
    assert len(s.measurements) == 1
    assert s.measurements[0].values["length_mm"] == pytest.approx(30.0, abs=0.5)  # 30 pixels of 1 mm
    assert w.statusBar().currentMessage().startswith("Ruler 1: ") and " mm" in w.statusBar().currentMessage()
    w.actions_["tool_roi_freehand"].trigger()
    corners = [(6, 19.5, 19.5), (6, 19.5, 39.5), (6, 39.5, 39.5), (6, 39.5, 19.5)]
    drag(qtbot, axial, corners + [corners[0]])
    roi = s.measurements[1].values
    assert roi["n_voxels"] == pytest.approx(400, abs=45)  # mouse positions are whole screen pixels
    assert -200 <= roi["min_hu"] < roi["mean_hu"] < roi["max_hu"] <= 199
    w.actions_["tool_roi_ellipse"].trigger()
    drag(qtbot, axial, [(6, 22, 22), (6, 38, 38)])
    assert s.measurements[2].kind == "ellipse" and s.measurements[2].values["area_mm2"] > 100
    assert w.measurements.list.count() == 3 and "mm²" in w.measurements.list.item(1).text()
    assert (axial.compose() == np.asarray(COLOUR, np.uint8)).all(axis=-1).sum() > 60
    assert s.editor.undo_depth == 0 and s.source == "loaded"  # measuring edits no label
    w.actions_["measure_delete"].trigger()
    assert len(s.measurements) == 2
    # Saved with the read, back when the read is opened again.
    for i, lobe in enumerate(LOBES):
        cb = w.forms.severity[lobe]
        cb.setCurrentIndex(cb.findData(i % 6))
    w.forms._fill_no()
    out = w.save_read(tmp_path / "read")
    assert out is not None and (out / "measurements.json").is_file()
    w2 = make_window(journal_root=tmp_path / "j2")
    s2 = open_scan(w2, s.volume, labels=out)
    assert s2.measurements == s.measurements[:2] and w2.measurements.list.count() == 2


def test_remove_3d_above_the_limit_asks_and_a_no_changes_nothing(make_window, qtbot):
    from readerapp.gui.state import Tool

    w = make_window()
    s = _session(w)
    s.labels[2:10, 20:30, 20:30] = Label.GGO  # 800 voxels of 2 mL = 1.6 mL
    before = s.labels.copy()
    w.controller.set_tool(Tool.REMOVE)
    w.actions_["opt_remove_3d"].setChecked(True)
    w.controller.set_option(confirm_ml=1.0)
    w.state.set_cursor((5, 25, 25))
    axial = w.slice_views[0]
    drag(qtbot, axial, [(5, 25, 25)])
    assert len(w.controller.pending) == 800 and np.array_equal(s.labels, before)
    w.confirm_answer = False
    drag(qtbot, axial, [(5, 25, 25)])  # second click: asks, the reader says no
    assert w.questions and "1.6 mL" in w.questions[-1]
    assert np.array_equal(s.labels, before) and w.controller.pending is None
    w.confirm_answer = True
    drag(qtbot, axial, [(5, 25, 25)])
    drag(qtbot, axial, [(5, 25, 25)])
    assert (s.labels == Label.GGO).sum() == 0 and s.editor.undo_depth == 1
    w.actions_["undo"].trigger()
    assert np.array_equal(s.labels, before)


def test_fill_3d_is_bounded_by_the_reach_and_cancelled_by_esc(make_window, qtbot):
    from readerapp.gui.state import Tool

    hu = np.full((12, 64, 64), -850, np.int16)
    hu[:, 8:56, 8:56] = -500  # the whole lung is ground-glass density
    w = make_window()
    s = _session(w, hu=hu)
    w.controller.set_tool(Tool.FILL)
    w.actions_["opt_fill_3d"].setChecked(True)
    w.controller.set_option(fill_radius_mm=6.0)
    w.state.set_cursor((6, 30, 30))
    drag(qtbot, w.slice_views[0], [(6, 30, 30)])
    n = len(w.controller.pending)
    zz, yy, xx = np.mgrid[-3:4, -6:7, -6:7]
    assert n == int(((zz * 2.0) ** 2 + yy**2 + xx**2 <= 36).sum())  # the ball of 6 mm, not the lung
    assert "within 6 mm" in w.statusBar().currentMessage()
    w.actions_["tool_navigate"].trigger()  # Esc: another tool cancels the preview
    assert w.controller.pending is None and (s.labels == Label.GGO).sum() == 0


def test_compare_follow_up_scrolls_linked_by_patient_position(make_window, qtbot):
    from readerapp.volume import CTVolume

    w = make_window()
    s = _session(w)  # 12 slices of 2 mm from z = 0
    s.labels[:, 30:40, 30:40] = Label.GGO
    hu = np.full((20, 64, 64), -850, np.int16)
    other = CTVolume(hu=hu, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, -4.0), series_uid="1.2.9")
    lab = np.zeros(hu.shape, np.uint8)
    lab[:, 10:20, 10:20] = Label.CONSOLIDATION
    cw = w.open_comparison(other, lab, "Baseline")
    qtbot.addWidget(cw)
    w.state.set_cursor((3, 30, 30))  # the main window's slice 4 (z = 6 mm) ...
    assert cw.left.index == 3 and cw.right.index == 10  # ... is the baseline's z = 6 mm
    cw.right.slider.setValue(14)  # scrolling the baseline to 10 mm moves the left to slice 6
    assert cw.left.index == 5
    cw.linked.setChecked(False)
    cw.right.slider.setValue(16)
    assert cw.left.index == 5  # unlinked: each side alone
    cw.linked.setChecked(True)  # relinked here: the 2 mm offset is kept
    cw.left.slider.setValue(6)
    assert cw.right.index == 18 and "+2.0 mm" in cw.offset_label.text()
    # Both panes in the main window's colours (one palette).
    from readerapp.gui.palette import overlay_rgb

    assert np.array_equal(cw.left.shown, overlay_rgb(s.volume.hu[6], s.labels[6]))
    assert np.array_equal(cw.right.shown, overlay_rgb(hu[18], lab[18]))
    assert tuple(cw.right.shown[15, 15]) != tuple(cw.right.shown[40, 40])  # consolidation shown
    # An edit in the window shows in the comparison at once.
    from readerapp.editing import Mode

    s.editor.apply_mode(np.ravel_multi_index(([6], [50], [50]), s.labels.shape), Mode.GGO)
    assert np.array_equal(cw.left.shown, overlay_rgb(s.volume.hu[6], s.labels[6]))
    cw.close()


def test_adjudication_uses_the_main_window_palette():
    from readerapp.gui.palette import overlay_rgb as main_overlay
    from readerapp.gui.state import COLOURS
    from readerapp.gui.study import adjudication

    hu = np.full((8, 8), -850, np.int16)
    lab = np.zeros((8, 8), np.uint8)
    lab[2:6, 2:6] = Label.LUNG
    lab[3, 3], lab[4, 4] = Label.GGO, Label.CONSOLIDATION
    rgb = adjudication.overlay_rgb(hu, lab)
    assert np.array_equal(rgb, main_overlay(hu, lab))
    assert tuple(rgb[2, 2]) == COLOURS["lung_outline"]
    grey = main_overlay(hu, np.zeros_like(lab))[3, 3].astype(float)
    expect = grey * 0.55 + np.asarray(COLOURS["ggo"]) * 0.45
    assert np.abs(rgb[3, 3] - expect).max() <= 1


def test_x_maximizes_the_3d_view_after_a_click_in_it(make_window, qtbot):
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    w = make_window()
    _session(w)
    vv = w.volume_view
    QTest.mouseClick(vv.canvas, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                     vv.canvas.rect().center())
    assert w.active_view == 3 and w.active_axis == 0  # arrows still scroll a slice view
    w.actions_["maximize"].trigger()  # X
    assert w.maximized_view is vv and not w.slice_views[0].isVisible() and vv.isVisible()
    w.actions_["maximize"].trigger()
    assert w.maximized_view is None and all(v.isVisible() for v in w.views)
    drag(qtbot, w.slice_views[1], [(6, 30, 30)])  # a click in the coronal view (navigate tool)
    w.actions_["maximize"].trigger()
    assert w.maximized_view is w.slice_views[1] and w.active_axis == 1


def test_brush_outline_shows_sphere_and_hu_limited_and_goes_with_the_tool(make_window, qtbot):
    from guikit import voxel_to_widget

    from readerapp.gui.state import COLOURS

    w = make_window()
    _session(w)
    axial = w.slice_views[0]
    w.state.set_cursor((6, 30, 30))
    w.actions_["tool_brush"].trigger()

    def hover():
        from PySide6 import QtCore, QtGui, QtWidgets

        p = QtCore.QPointF(voxel_to_widget(axial, (6, 30, 30)))
        ev = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, p, axial.canvas.mapToGlobal(p),
                               QtCore.Qt.MouseButton.NoButton, QtCore.Qt.MouseButton.NoButton,
                               QtCore.Qt.KeyboardModifier.NoModifier)
        QtWidgets.QApplication.sendEvent(axial.canvas, ev)
        style = axial.brush_shown_style  # the brush outline is the mouse cursor, in this style
        cursor = axial.canvas.cursor()
        bitmap = cursor.shape() is QtCore.Qt.CursorShape.BitmapCursor
        return bitmap, style.rgb, style.dashed

    assert hover() == (True, COLOURS["brush"], False)  # disk: white, solid
    w.actions_["opt_sphere"].trigger()
    assert hover() == (True, COLOURS["brush_sphere"], False)  # sphere: orange
    w.actions_["opt_hu_limited"].trigger()
    assert hover() == (True, COLOURS["brush_sphere"], True)  # HU-limited: dashed
    assert axial._brush_cursor_key[-1] == axial.brush_shown_style  # the cursor drawn in that style
    assert "3D sphere, HU-limited" in w.statusBar().currentMessage()
    w.actions_["tool_fill"].trigger()  # no mouse move: the outline goes with the tool change
    from PySide6 import QtCore

    assert axial.canvas.cursor().shape() is QtCore.Qt.CursorShape.CrossCursor


def test_fill_between_slices_forgets_an_undone_stroke_and_erases_when_erased(make_window, qtbot):
    from readerapp.gui.state import Tool

    w = make_window()
    s = _session(w)
    axial = w.slice_views[0]
    w.controller.set_tool(Tool.BRUSH)
    w.actions_["mode_ggo"].trigger()
    w.controller.set_option(radius_mm=4.0)
    for z in (2, 8):
        w.state.set_cursor((z, 30, 30))
        drag(qtbot, axial, [(z, 30, 30)])
    w.actions_["undo"].trigger()  # the second key slice taken back
    before = s.labels.copy()
    w.actions_["interpolate"].trigger()
    assert np.array_equal(s.labels, before) and "two slices" in w.statusBar().currentMessage()
    # A GGO column, erased on slices 2 and 8 with the eraser: fill between erases only its inside.
    from readerapp.editing import Mode

    column = np.zeros(s.labels.shape, bool)
    column[:, 20:40, 20:40] = True
    s.editor.apply_mode(np.flatnonzero(column), Mode.GGO)
    painted = s.labels.copy()
    w.actions_["mode_erase"].trigger()
    for z in (2, 8):
        w.state.set_cursor((z, 30, 30))
        drag(qtbot, axial, [(z, 30, 30)])
    erased = int((s.labels[2] != painted[2]).sum())
    assert erased > 20
    before = s.labels.copy()
    w.actions_["interpolate"].trigger()
    changed = s.labels != before
    assert (s.labels[changed] == Label.LUNG).all()  # erased, nothing painted
    assert [int(changed[z].sum()) for z in range(3, 8)] == [erased] * 5
    assert changed.sum() == 5 * erased


def test_compare_panes_follow_the_radiological_convention(make_window, qtbot):
    from readerapp.gui.palette import overlay_rgb
    from readerapp.volume import CTVolume

    w = make_window()
    s = _session(w)
    hu = np.full((12, 64, 64), -850, np.int16)
    hu[:, 5, 50] = 100  # a marker near the front (y small) and the patient's left (x large)
    # Stored with x towards the patient's right and y towards the back reversed (direction -1).
    other = CTVolume(hu=hu, spacing=(1.0, 1.0, 2.0), series_uid="1.2.10",
                     direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    cw = w.open_comparison(other, None, "Mirrored baseline")
    qtbot.addWidget(cw)
    z = cw.right.index
    assert np.array_equal(cw.right.shown, overlay_rgb(hu[z][::-1, ::-1], np.zeros((64, 64), np.uint8)))
    assert s.volume.direction == (1, 0, 0, 0, 1, 0, 0, 0, 1)
    cw.close()


def test_closing_with_unsaved_measurements_asks(make_window, qtbot, monkeypatch, tmp_path):
    from PySide6 import QtWidgets

    from readerapp.forms import LOBES

    w = make_window()
    s = _session(w)
    asked: list[str] = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(
        lambda parent, title, text, *a: asked.append(text) or QtWidgets.QMessageBox.StandardButton.No))
    w.interactive = True
    assert w._may_leave(s, "Close anyway?") and not asked  # nothing unsaved: no question
    w.state.set_cursor((6, 30, 30))
    w.actions_["tool_ruler"].trigger()
    drag(qtbot, w.slice_views[0], [(6, 10, 10), (6, 10, 40)])
    assert s.unsaved_measurements and not s.modified
    w.close()  # the reader says No: the window stays
    assert w.isVisible() and "rulers and ROIs are not saved" in asked[-1]
    w.interactive = False
    for i, lobe in enumerate(LOBES):
        cb = w.forms.severity[lobe]
        cb.setCurrentIndex(cb.findData(i % 6))
    assert w.save_read(tmp_path / "read") is not None
    assert not s.unsaved_measurements


def test_previewed_edits_wait_while_the_read_is_being_saved(make_window, qtbot):
    """While a save runs (controller busy) a preview is neither applied nor replaced, and fills,
    removes and fill-between-slices are refused with a message; afterwards it applies."""
    from readerapp.gui.state import Tool

    w = make_window()
    s = _session(w)
    s.labels[2:10, 20:30, 20:30] = Label.GGO
    before = s.labels.copy()
    w.controller.set_tool(Tool.REMOVE)
    w.actions_["opt_remove_3d"].setChecked(True)
    w.state.set_cursor((5, 25, 25))
    axial = w.slice_views[0]
    drag(qtbot, axial, [(5, 25, 25)])
    plan = w.controller.pending
    assert plan is not None and len(plan) == 800
    w.controller.busy = "the read is being saved"
    assert w.controller.apply_pending() is None
    assert w.controller.pending is plan and np.array_equal(s.labels, before)
    assert "Not now" in w.statusBar().currentMessage()
    w.controller._fill(0, (5, 25, 25))
    w.controller._remove(0, (5, 25, 25))
    w.controller.interpolate()
    assert w.controller.pending is plan and np.array_equal(s.labels, before)
    w.controller.busy = None
    w.controller.apply_pending()
    assert (s.labels == Label.GGO).sum() == 0
