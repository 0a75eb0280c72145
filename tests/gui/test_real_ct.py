"""The real chest CT in the real window: paint, numbers change, undo returns them exactly."""

from __future__ import annotations

import numpy as np
import pytest
from guikit import drag

from readerapp.labels import Label

pytestmark = [pytest.mark.gui, pytest.mark.realdata]


def _not_blank(px: np.ndarray) -> bool:
    return float(px.reshape(-1, 3).std(axis=0).max()) > 5.0


def _paint_and_undo(w, qtbot):
    from readerapp.editing import Mode
    from readerapp.gui.state import Tool

    s = w.controller.session
    start = dict(w.numbers.current)
    lung = np.argwhere(s.labels == Label.LUNG)
    z, y, x = (int(v) for v in lung[len(lung) // 2])
    w.state.set_cursor((z, y, x))
    w.controller.set_tool(Tool.BRUSH)
    w.controller.set_mode(Mode.GGO)
    w.controller.set_option(radius_mm=8.0)
    before = s.labels.copy()
    drag(qtbot, w.slice_views[0], [(z, y, x), (z, y + 4, x + 6), (z, y + 8, x + 10)])
    added = int(((s.labels == Label.GGO) & (before != Label.GGO)).sum())
    assert added > 50
    assert w.numbers.current["ggo_volume_ml"] == pytest.approx(
        start["ggo_volume_ml"] + added * s.volume.voxel_volume_ml)
    assert w.numbers.current["lesion_pct"] > start["lesion_pct"]
    w.actions_["undo"].trigger()
    assert np.array_equal(s.labels, before)
    assert w.numbers.current == start
    return s


def test_real_chest_ct(make_window, open_scan, chest_ct_dir, qtbot):
    w = make_window()
    s = open_scan(w, [str(chest_ct_dir)])
    assert s.labels.shape == (64, 512, 512) and s.source == "auto"
    assert w.numbers.current["lung_volume_ml"] > 1000  # an adult's lungs
    for v in w.views:
        assert _not_blank(v.canvas.pixels()), v.header.text()
    _paint_and_undo(w, qtbot)
    _edits_stay_where_pointed(w, qtbot)


def _edits_stay_where_pointed(w, qtbot):
    """The tester's findings on real CT: a 3D fill from one click is bounded and previewed; Remove
    lesion takes only the slice's piece."""
    from readerapp.editing import Mode
    from readerapp.gui.state import Tool

    s = w.controller.session
    before = s.labels.copy()
    hu = s.volume.hu
    from scipy import ndimage

    # a seed inside a patch in range (a lone voxel in range would depend on the click's rounding)
    ok = ndimage.binary_erosion((hu >= -750) & (hu < -300) & (s.labels == Label.LUNG),
                                structure=np.ones((1, 3, 3), bool))
    seeds = np.argwhere(ok)
    z, y, x = (int(v) for v in seeds[len(seeds) // 2])
    w.state.set_cursor((z, y, x))
    w.controller.set_mode(Mode.GGO)
    w.controller.set_tool(Tool.FILL)
    w.actions_["opt_fill_3d"].setChecked(True)
    drag(qtbot, w.slice_views[0], [(z, y, x)])
    ball_ml = 4 / 3 * np.pi * w.controller.settings.fill_radius_mm**3 / 1000
    assert 0 < w.controller.pending_ml() <= ball_ml * 1.05
    assert np.array_equal(s.labels, before)  # nothing changed before the reader's go
    w.actions_["tool_navigate"].trigger()
    assert w.controller.pending is None
    lesion = np.argwhere(s.labels >= Label.GGO)
    if len(lesion):
        z, y, x = (int(v) for v in lesion[len(lesion) // 2])
        w.state.set_cursor((z, y, x))
        w.controller.set_tool(Tool.REMOVE)
        drag(qtbot, w.slice_views[0], [(z, y, x)])
        changed = np.argwhere(s.labels != before)
        assert len(changed) and set(changed[:, 0].tolist()) == {z}  # this slice only
        w.actions_["undo"].trigger()
    assert np.array_equal(s.labels, before)


@pytest.mark.gpu
def test_live_numbers_on_gpu(make_window, open_scan, chest_ct_dir, qtbot):
    from readerapp.backend import cupy_available

    if not cupy_available():
        pytest.skip("no usable CUDA GPU with CuPy here")
    w = make_window(backend="auto")
    s = open_scan(w, [str(chest_ct_dir)])
    assert s.backend == "cupy" and "CuPy" in w.numbers.backend_label.text()
    _paint_and_undo(w, qtbot)
    from readerapp.densitometry import compute_table

    assert s.acc.table == compute_table(s.volume.hu, s.labels, backend="numpy")


def test_cancel_loading_leaves_a_usable_window(make_window, chest_ct_dir, qtbot):
    w = make_window()
    w.open_series([str(chest_ct_dir)])
    assert w.cancel_button.isVisible()
    w.cancel_button.click()
    qtbot.waitUntil(lambda: w._thread is None, timeout=60_000)
    assert w.controller.session is None and not w.errors
    assert not w.progress.isVisible()


def test_compare_with_another_scan_from_the_file_menu(make_window, open_scan, chest_ct_dir, qtbot,
                                                      monkeypatch):
    from PySide6 import QtWidgets

    w = make_window()
    s = open_scan(w, [str(chest_ct_dir)])
    answers = iter([str(chest_ct_dir), ""])  # the other visit's folder; no read folder for labels
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: next(answers)))
    w.compare_dialog()
    cw = w.compare_window
    assert cw is not None and cw.isVisible() and not w.errors
    qtbot.addWidget(cw)
    w.state.set_cursor((20, 256, 256))
    assert cw.left.index == 20 and cw.right.index == 20  # the same scan: the same positions
    assert cw.right.current_labels().shape == s.labels.shape and not cw.right.current_labels().any()
    cw.close()
