"""The real window, headless: open, paint with the mouse, numbers follow, undo restores exactly."""

from __future__ import annotations

import numpy as np
import pytest
from guikit import drag, voxel_to_widget

from readerapp.labels import Label
from readerapp.phantom import make_chest_phantom

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def phantom():
    return make_chest_phantom((40, 96, 96), (3.0, 3.0, 5.0), seed=3)


def _blank(pixels: np.ndarray) -> bool:
    return pixels.size == 0 or float(pixels.reshape(-1, 3).std(axis=0).max()) < 2.0


def test_phantom_paint_numbers_follow_and_undo_restores(make_window, open_scan, phantom, qtbot):
    from readerapp.editing import Mode
    from readerapp.gui.state import Tool

    w = make_window()
    s = open_scan(w, phantom.volume)
    start = w.numbers.current.copy()
    assert start["lesion_volume_ml"] == pytest.approx(
        s.initial_endpoints.lesion_volume_ml) and "Backend: NumPy" in w.numbers.backend_label.text()
    axial = w.slice_views[0]
    z = s.labels.shape[0] // 2
    w.state.set_cursor((z, 48, 48))
    lung_vox = np.argwhere(s.labels[z] == Label.LUNG)
    y, x = lung_vox[len(lung_vox) // 2]
    w.controller.set_tool(Tool.BRUSH)
    w.controller.set_mode(Mode.CONSOLIDATION)
    w.controller.set_option(radius_mm=6.0)
    before = s.labels.copy()
    drag(qtbot, axial, [(z, y, x), (z, y, x + 3), (z, y + 2, x + 3)])
    changed = int((s.labels != before).sum())
    assert changed > 5 and s.editor.undo_depth == 1
    now = w.numbers.current
    gained = int(((s.labels == Label.CONSOLIDATION) & (before != Label.CONSOLIDATION)).sum())
    assert now["consolidation_volume_ml"] == pytest.approx(
        start["consolidation_volume_ml"] + gained * phantom.volume.voxel_volume_ml)
    assert w.numbers.table.item(6, 2).text() not in ("0", "—")  # the Δ column moved
    # Live: the numbers changed during the drag, not only at release.
    assert len(w.controller.event_latencies) == 3
    # The 3D view redoes only the touched slabs; the result equals a full downsampling.
    from readerapp.gui.volume_view import VolumeView

    w.volume_view.rebuild()
    small, f, fz = w.volume_view._downsampled(s.labels, s.volume.spacing)
    assert np.array_equal(small, VolumeView._down_xy_z(s.labels, f, fz))
    assert (small == Label.CONSOLIDATION).sum() > (VolumeView._down_xy_z(before, f, fz) == 3).sum()
    w.actions_["undo"].trigger()
    assert np.array_equal(s.labels, before)
    assert w.numbers.current == start
    w.actions_["redo"].trigger()
    assert int((s.labels != before).sum()) == changed


def test_views_render_pixels_and_screenshot(make_window, open_scan, phantom, tmp_path):
    from readerapp.gui.app import screenshot

    w = make_window()
    open_scan(w, phantom.volume)
    w.volume_view.rebuild()
    for v in w.views:
        px = v.canvas.pixels()
        assert px.shape[0] > 50 and not _blank(px), v.header.text()
    # The lesion overlay colours are on the axial slice through a lesion.
    out = screenshot(w, tmp_path / "shot.png")
    from PySide6 import QtGui

    img = QtGui.QImage(str(out))
    dpr = w.devicePixelRatioF()  # physical pixels: a 4K screen at scale 2 gives twice the size
    assert img.width() == round(w.width() * dpr) and img.height() == round(w.height() * dpr)


def test_linked_cursor_wheel_presets_and_maximize(make_window, open_scan, phantom, qtbot):
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    w = make_window()
    s = open_scan(w, phantom.volume)
    axial, coronal, sagittal = w.slice_views
    # Ctrl+click on the axial view moves the cursor: coronal and sagittal follow.
    target = (s.labels.shape[0] // 2, 30, 60)
    p = voxel_to_widget(axial, target)
    QTest.mouseClick(axial.canvas, QtCore.Qt.MouseButton.LeftButton,
                     QtCore.Qt.KeyboardModifier.ControlModifier, p)
    assert w.state.cursor[1:] == [30, 60]
    assert coronal.header.text().startswith("Coronal  31/") and sagittal.header.text().startswith("Sagittal  61/")
    z0 = w.state.cursor[0]
    ev_pos = QtCore.QPointF(p)
    from PySide6 import QtGui

    wheel = QtGui.QWheelEvent(ev_pos, axial.canvas.mapToGlobal(ev_pos), QtCore.QPoint(0, 0),
                              QtCore.QPoint(0, 120), QtCore.Qt.MouseButton.NoButton,
                              QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtCore.QCoreApplication.sendEvent(axial.canvas, wheel)
    assert w.state.cursor[0] == z0 + 1
    # Keys pressed on a view reach the window's shortcuts, not VTK's interactor (where 'q' and
    # 'e' would end the event loop and 'w' would turn the 3D view to wireframe).
    axial.canvas.setFocus()
    QTest.keyClick(axial.canvas, QtCore.Qt.Key.Key_M)
    assert (w.state.window, w.state.level) == (400.0, 40.0)
    for key in (QtCore.Qt.Key.Key_Q, QtCore.Qt.Key.Key_E, QtCore.Qt.Key.Key_W):
        QTest.keyClick(w.volume_view.canvas, key)
    assert w.isVisible()
    rep = w.volume_view.actors[1].GetProperty().GetRepresentation()
    assert rep == 2  # VTK_SURFACE, not wireframe
    w.actions_["preset_mediastinum"].trigger()
    assert (w.state.window, w.state.level) == (400.0, 40.0)
    w.actions_["preset_lung"].trigger()
    assert w.state.window == 1500.0
    w.toggle_maximize(axial)
    assert axial.isVisible() and not coronal.isVisible() and not w.volume_view.isVisible()
    w.toggle_maximize(axial)
    assert coronal.isVisible()
    # Hovering reports position and HU.
    qtbot.wait(50)
    p = voxel_to_widget(axial, target)
    pf = QtCore.QPointF(p)
    move = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, pf, axial.canvas.mapToGlobal(pf),
                             QtCore.Qt.MouseButton.NoButton, QtCore.Qt.MouseButton.NoButton,
                             QtCore.Qt.KeyboardModifier.NoModifier)
    QtCore.QCoreApplication.sendEvent(axial.canvas, move)
    assert "HU" in w.pos_label.text()
    # Overlay on/off changes the axial pixels where a lesion is drawn.
    assert (s.labels[w.state.cursor[0]] > 0).any()  # lung on this slice: an outline is drawn
    before = axial.compose().copy()
    w.actions_["overlay_toggle"].trigger()
    assert not w.state.overlay_visible
    assert not np.array_equal(before, axial.compose())


def test_forms_block_incomplete_save_then_save_and_load(make_window, open_scan, phantom, tmp_path):
    from readerapp.forms import LOBES
    from readerapp.readfile import load_read

    w = make_window()
    s = open_scan(w, phantom.volume)
    w.forms.day90.setChecked(True)
    assert w.save_read(tmp_path / "read") is None
    assert "30 required answer" in w.errors[-1]
    for i, lobe in enumerate(LOBES):
        cb = w.forms.severity[lobe]
        cb.setCurrentIndex(cb.findData(i % 6))
    w.forms._fill_no()
    w.forms.fibrosis["pleural_thickening"]["RLL"].setCurrentIndex(2)
    assert w.forms.missing() == []
    assert "Total: 10 / 25" in w.forms.total_label.text()
    out = w.save_read(tmp_path / "read")
    assert out is not None
    read = load_read(out, s.volume)
    assert np.array_equal(read.labels, s.labels)
    assert read.form.fibrosis_patient_level()["pleural_thickening"] is True
    assert read.form.severity_total() == 10
    assert read.endpoints["lesion_volume_ml"] == pytest.approx(w.numbers.current["lesion_volume_ml"])
    assert not s.modified
    # Opening the scan with the read folder as labels continues that read: labels and form.
    w2 = make_window(journal_root=tmp_path / "j2")
    s2 = open_scan(w2, phantom.volume, labels=out)
    assert np.array_equal(s2.labels, s.labels) and s2.source == "loaded"  # no edits: not "corrected"
    assert w2.forms.form() == read.form and w2.forms.missing() == []


def test_dropped_bad_folder_gives_a_clear_error_and_joins_recent(make_window, qtbot, tmp_path):
    from PySide6 import QtCore, QtGui

    w = make_window()
    folder = tmp_path / "notdicom"
    folder.mkdir()
    (folder / "x.txt").write_text("hello")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(folder))])
    drop = QtGui.QDropEvent(QtCore.QPointF(50, 50), QtCore.Qt.DropAction.CopyAction, mime,
                            QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(w.load_failed, timeout=30_000) as sig:
        w.dropEvent(drop)
    assert "notdicom" in sig.args[0] or "DICOM" in sig.args[0]
    assert w.controller.session is None and w.errors
    qtbot.waitUntil(lambda: w._thread is None, timeout=10_000)
    assert w.recent()[0] == str(folder)
    assert [a.text() for a in w.recent_menu.actions()] == [str(folder)]


def test_tools_fill_remove_interpolate_from_the_window(make_window, open_scan, qtbot):
    from readerapp.editing import Mode
    from readerapp.gui.state import Tool
    from readerapp.volume import CTVolume

    hu = np.full((12, 64, 64), -850, np.int16)
    hu[4:8, 20:30, 20:30] = -500  # a GGO-density block: 400 voxels
    vol = CTVolume(hu=hu, spacing=(2.0, 2.0, 2.0), series_uid="1.2.826.0.1.9")
    labels = np.zeros(hu.shape, np.uint8)
    labels[:, 8:56, 8:56] = Label.LUNG
    from readerapp.editing.session import Prepared, ReadingSession

    w = make_window()
    sess = ReadingSession(Prepared(vol, labels, "file"), backend="numpy",
                          journal_root=w.journal_root)
    sess.start_journal()
    w.set_session(sess)
    axial = w.slice_views[0]
    w.state.set_cursor((5, 25, 25))
    w.controller.set_mode(Mode.GGO)
    w.controller.set_tool(Tool.FILL)
    w.controller.set_option(fill_3d=True)
    drag(qtbot, axial, [(5, 25, 25)])  # previewed first: nothing changes yet
    assert (sess.labels == Label.GGO).sum() == 0 and len(w.controller.pending) == 400
    drag(qtbot, axial, [(5, 25, 25)])  # a second click inside the preview applies it
    assert (sess.labels == Label.GGO).sum() == 400 and w.controller.pending is None
    w.controller.set_tool(Tool.REMOVE)
    drag(qtbot, axial, [(5, 22, 22)])  # by default: this slice's piece only
    assert (sess.labels == Label.GGO).sum() == 300 and not (sess.labels[5] == Label.GGO).any()
    w.actions_["opt_remove_3d"].trigger()
    drag(qtbot, axial, [(5, 22, 22)])  # no lesion left on slice 5: nothing to preview
    assert w.controller.pending is None
    w.state.set_cursor((6, 25, 25))
    drag(qtbot, axial, [(6, 22, 22)])
    assert w.controller.pending is not None and (sess.labels == Label.GGO).sum() == 300
    from readerapp.gui.state import COLOURS

    red = np.asarray(COLOURS["preview"], np.uint8)
    for v in w.slice_views:  # the extent is outlined in every view that crosses it
        assert (v.compose() == red).all(axis=-1).any(), v.axis
    assert w.preview_3d.n_points == 200  # and shown in the 3D view
    assert "1.60 mL over slices 7-8" in w.statusBar().currentMessage()
    w.actions_["apply_preview"].trigger()  # Enter
    # Slice 5's removal split the lesion: the 3D removal takes slices 6-7, not slice 4.
    assert (sess.labels == Label.GGO).sum() == 100 and (sess.labels[4] == Label.GGO).sum() == 100
    assert "Remove lesion 3D: 1.60 mL changed: GGO -1.60 mL" in w.statusBar().currentMessage()
    for v in w.slice_views:
        assert not (v.compose() == red).all(axis=-1).any()
    assert w.preview_3d.n_points == 0
    # Paint disks on slices 2 and 8, then fill between.
    w.controller.set_tool(Tool.BRUSH)
    w.controller.set_option(radius_mm=6.0, hu_limited=False)
    for z in (2, 8):
        w.state.set_cursor((z, 40, 40))
        drag(qtbot, axial, [(z, 40, 40)])
    per_slice = int((sess.labels[2] == Label.GGO).sum())
    before = sess.labels.copy()
    w.actions_["interpolate"].trigger()
    changed = sess.labels != before
    assert [int(changed[z].sum()) for z in range(3, 8)] == [per_slice] * 5
    assert changed.sum() == 5 * per_slice and (sess.labels[changed] == Label.GGO).all()
    assert (sess.labels[4, 20:30, 20:30] == Label.GGO).all()  # the other lesion is untouched
    assert sess.editor.undo_depth == 6  # fill, remove, remove 3D, two strokes, fill between
    assert "GGO +" in w.statusBar().currentMessage()
    w.actions_["undo"].trigger()  # one undo reverts the whole fill between slices
    assert np.array_equal(sess.labels, before)
    assert w.statusBar().currentMessage().startswith("Undo fill between slices 3-9")


def test_orientation_letters_follow_the_volume_direction():
    """Mirrored scan axes are mirrored back on screen: the letters stay conventional."""
    from readerapp.gui.slice_view import display_reversal, orientation_letters

    identity = (1, 0, 0, 0, 1, 0, 0, 0, 1)
    flipped_x = (-1, 0, 0, 0, 1, 0, 0, 0, 1)  # columns run towards the patient's right
    feet_first = (1, 0, 0, 0, 1, 0, 0, 0, -1)
    for d in (identity, flipped_x, feet_first):
        assert orientation_letters(0, d) == ("R", "L", "A", "P")
        assert orientation_letters(1, d) == ("R", "L", "S", "I")
        assert orientation_letters(2, d) == ("A", "P", "S", "I")
    assert display_reversal(0, identity) == (False, True)  # anterior (y = 0) on top
    assert display_reversal(0, flipped_x) == (True, True)
    assert display_reversal(2, feet_first) == (False, True)
    # A permuted scan (x along the patient's y) is labelled truthfully.
    permuted = (0, 1, 0, 1, 0, 0, 0, 0, 1)
    assert orientation_letters(0, permuted) == ("A", "P", "R", "L")


def test_file_menu_opens_pacs_browser_and_site_settings(qtbot, monkeypatch, tmp_path):
    """The sites part's dialogs are reachable from the workstation's File menu."""
    monkeypatch.setenv("READERAPP_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("READERAPP_DATA_DIR", str(tmp_path / "data"))
    from PySide6 import QtWidgets

    from readerapp.gui.firstrun import FirstRunDialog
    from readerapp.gui.main_window import MainWindow
    from readerapp.gui.pacs_dialog import PacsBrowser

    win = MainWindow(use_journal=False, interactive=False)
    qtbot.addWidget(win)
    file_menu = win.menuBar().actions()[0].menu()
    texts = [a.text() for a in file_menu.actions()]
    assert "Retrieve from &PACS…" in texts and "Site &settings…" in texts
    shown = []
    monkeypatch.setattr(FirstRunDialog, "exec", lambda self: shown.append(self) or 0)
    win.open_site_settings()
    assert shown and isinstance(shown[0], FirstRunDialog)
    win.open_pacs_browser()
    browsers = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, PacsBrowser)]
    assert browsers
    for b in browsers:
        b.close()


def test_setting_the_same_session_twice_signals_each_edit_once(make_window, open_scan, phantom):
    from readerapp.editing import Mode

    w = make_window()
    s = open_scan(w, phantom.volume)
    w.set_session(s)
    seen: list[int] = []
    w.controller.voxels_changed.connect(lambda idx: seen.append(idx.size))
    e = s.editor.apply_mode(np.flatnonzero(s.labels == Label.LUNG)[:50], Mode.GGO)
    assert e is not None and seen == [len(e)]


def test_a_failing_journal_is_reported_once(make_window, open_scan, phantom):
    from readerapp.editing import Mode

    class FullDisk:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    w = make_window()
    s = open_scan(w, phantom.volume)
    assert s.journal is not None
    s.journal._fh = FullDisk()
    lung = np.flatnonzero(s.labels == Label.LUNG)
    for k in range(2):
        assert s.editor.apply_mode(lung[k * 50 : (k + 1) * 50], Mode.GGO) is not None
    assert s.editor.undo_depth == 2
    reported = [e for e in w.errors if "no longer journaled" in e]
    assert len(reported) == 1 and "No space left" in reported[0]
    assert w.tools_panel.history_label.text().startswith("Undo steps: 2")


def test_a_second_button_during_a_stroke_ends_it_as_one_journaled_step(make_window, open_scan,
                                                                       phantom, qtbot):
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from readerapp.editing import Mode
    from readerapp.gui.state import Tool

    w = make_window()
    s = open_scan(w, phantom.volume)
    ax = w.slice_views[0]
    z = s.labels.shape[0] // 2
    lung = np.argwhere(s.labels[z] == Label.LUNG)
    y, x = (int(v) for v in lung[len(lung) // 2])
    w.state.set_cursor((z, y, x))
    w.controller.set_tool(Tool.BRUSH)
    w.controller.set_mode(Mode.CONSOLIDATION)
    assert s.journal is not None
    written = s.journal.records_written
    left, right = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.RightButton
    none = QtCore.Qt.KeyboardModifier.NoModifier
    p = voxel_to_widget(ax, (z, y, x))
    QTest.mousePress(ax.canvas, left, none, p)
    QTest.mousePress(ax.canvas, right, none, p)  # zoom while painting
    QTest.mouseRelease(ax.canvas, right, none, p)
    QTest.mouseRelease(ax.canvas, left, none, p)
    assert not s.editor.in_stroke and s.editor.undo_depth == 1
    assert s.journal.records_written == written + 1
