"""PACS habits in the real window: image numbers, Home/End, cine, typed W/L, presets, crosshair,
thick slab MIP/MinIP, scale bar and layouts."""

from __future__ import annotations

import numpy as np
import pytest

from readerapp.phantom import make_chest_phantom

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    from readerapp.io.dicom_write import write_synthetic_series

    ph = make_chest_phantom((30, 64, 64), (4.0, 4.0, 5.0), seed=5)
    folder = tmp_path_factory.mktemp("pacs") / "series"

    def window(k, ds):
        ds.WindowCenter = "-500"
        ds.WindowWidth = "1200"

    write_synthetic_series(ph.volume, folder, edit=window)
    return folder


def test_image_numbers_and_navigation_as_on_the_pacs(make_window, open_scan, series, qtbot):
    w = make_window()
    s = open_scan(w, [str(series)])
    axial = w.slice_views[0]
    nz = s.labels.shape[0]
    w.go_to_image(21)  # the writer numbers from the head: image 21 is slice nz - 21
    assert w.state.cursor[0] == nz - 21
    z_mm = s.volume.index_to_lps((nz - 21, 0, 0))[2]
    assert axial.header.text() == f"Axial  Im 21 \u00b7 z {z_mm:.1f} mm \u00b7 5.0 mm".replace("-", "\u2212")
    tools = w.display_tools
    w.active_axis = 0
    tools.actions["slice_first"].trigger()
    assert w.state.cursor[0] == 0
    tools.actions["slice_last"].trigger()
    assert w.state.cursor[0] == nz - 1
    # Ctrl+G asks for the number a colleague quotes.
    from PySide6 import QtWidgets

    orig = QtWidgets.QInputDialog.getInt
    QtWidgets.QInputDialog.getInt = staticmethod(lambda *a, **k: (7, True))
    try:
        tools.actions["go_to_image"].trigger()
    finally:
        QtWidgets.QInputDialog.getInt = orig
    assert w.state.cursor[0] == nz - 7 and "Im 7 " in axial.header.text()
    # Crosshair off: an axial step leaves the other views as they are (no render at all).
    tools.actions["crosshair_toggle"].trigger()
    qtbot.wait(20)
    before = [v.renders for v in w.slice_views]
    w.state.step_slice(0, 1)
    qtbot.wait(20)
    assert [v.renders - b for v, b in zip(w.slice_views, before, strict=True)] == [1, 0, 0]
    tools.actions["crosshair_toggle"].trigger()
    # Cine loops through the slices and pauses.
    tools.actions["cine"].setChecked(True)
    qtbot.waitUntil(lambda: w.state.cursor[0] not in (nz - 1,), timeout=3000)
    qtbot.waitUntil(lambda: w.state.cursor[0] >= 2, timeout=5000)
    tools.actions["cine"].setChecked(False)
    z = w.state.cursor[0]
    qtbot.wait(250)
    assert w.state.cursor[0] == z and not tools.cine_timer.isActive()


def test_window_level_presets_crosshair_slab_scale_bar_and_layouts(make_window, open_scan,
                                                                   series, qtbot):
    w = make_window()
    s = open_scan(w, [str(series)])
    tools = w.display_tools
    tools.window_edit.setText("350")
    tools.level_edit.setText("\u221225")
    tools.apply_typed_window()
    assert (w.state.window, w.state.level) == (350.0, -25.0)
    tools.actions["preset_bone"].trigger()
    assert (w.state.window, w.state.level) == (2000.0, 400.0)
    assert tools.window_edit.text() == "2000"
    tools.actions["preset_scan"].trigger()
    assert (w.state.window, w.state.level) == (1200.0, -500.0)
    axial = w.slice_views[0]
    tools.actions["crosshair_toggle"].trigger()
    axial.canvas.pixels()
    assert not axial.cross_actor.GetVisibility()
    tools.actions["crosshair_toggle"].trigger()
    axial.canvas.pixels()
    assert axial.cross_actor.GetVisibility()
    # Thick slab: MIP and MinIP over the slab around the cursor's slice, thickness in mm.
    z = s.labels.shape[0] // 2
    w.state.set_cursor((z, 32, 32))
    tools.slab_spin.setValue(15.0)  # 3 slices of 5 mm
    tools.slab_combo.setCurrentIndex(tools.slab_combo.findData("minip"))
    lo, hi = axial.slab_range()
    assert hi - lo == 3
    hu2, _ = axial.slice_arrays()
    assert np.array_equal(hu2, s.volume.hu[lo:hi].min(axis=0)[::-1])
    assert "MINIP 15 mm" in axial.header.text()
    tools.slab_combo.setCurrentIndex(tools.slab_combo.findData("mip"))
    hu2, _ = axial.slice_arrays()
    assert np.array_equal(hu2, s.volume.hu[lo:hi].max(axis=0)[::-1])
    tools.slab_combo.setCurrentIndex(tools.slab_combo.findData("off"))
    assert axial.slab_range() == (z, z + 1)
    axial.canvas.pixels()
    assert axial.scale_bar_mm in (5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
    # Layouts: a large axial with three small views; the active view alone; back to 2x2.
    tools.actions["layout_1+3"].trigger()
    qtbot.wait(50)
    assert axial.width() > 2 * w.slice_views[1].width() and all(v.isVisible() for v in w.views)
    w.active_axis = 1
    tools.actions["layout_1x1"].trigger()
    qtbot.wait(50)
    assert [v.isVisible() for v in w.views] == [False, True, False, False]
    before = [v.renders for v in w.slice_views]
    w.state.step_slice(1, 1)  # scrolling the one view shown draws only that view
    qtbot.wait(30)
    assert [v.renders - b for v, b in zip(w.slice_views, before, strict=True)] == [0, 1, 0]
    tools.actions["layout_2x2"].trigger()
    qtbot.wait(50)
    assert all(v.isVisible() for v in w.views)
    assert abs(axial.width() - w.slice_views[1].width()) <= 2
    # The views hidden meanwhile draw what they missed when shown again.
    qtbot.waitUntil(lambda: all(v._pending is None for v in w.slice_views), timeout=3000)
    assert w.slice_views[2]._shown_slice == w.state.cursor[2]
