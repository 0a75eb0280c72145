"""Rulers and ROIs: exact lengths, areas and HU statistics on a phantom; kept with the read."""

from __future__ import annotations

import numpy as np
import pytest

from readerapp.measurements import (
    Measurement,
    MeasurementError,
    from_json_obj,
    line_mask,
    make,
    roi_mask,
    to_json_obj,
)


def _ct():
    hu = np.full((10, 40, 50), -800, np.int16)
    hu[4, 10:20, 10:20] = np.arange(100, dtype=np.int16).reshape(10, 10)  # 0..99 HU
    return hu


def test_ruler_length_in_mm_uses_the_spacing():
    m = make("ruler", 0, [(4, 10, 10), (4, 12, 12), (4, 13, 14)], _ct(), (5.0, 0.5, 0.75))
    assert m.points == [(4.0, 10.0, 10.0), (4.0, 13.0, 14.0)]  # first and last point
    assert m.values["length_mm"] == pytest.approx(np.hypot(3 * 0.5, 4 * 0.75))
    # A coronal ruler along z uses the slice spacing.
    m = make("ruler", 1, [(2, 7, 5), (6, 7, 5)], _ct(), (2.5, 1.0, 1.0))
    assert m.values["length_mm"] == pytest.approx(10.0)


def test_freehand_square_roi_exact_statistics():
    hu = _ct()
    square = [(4, 9.5, 9.5), (4, 9.5, 19.5), (4, 19.5, 19.5), (4, 19.5, 9.5)]
    m = make("freehand", 0, square, hu, (3.0, 0.5, 0.5))
    v = m.values
    assert v["n_voxels"] == 100 and v["area_mm2"] == pytest.approx(25.0)
    ref = np.arange(100, dtype=float)
    assert v["mean_hu"] == pytest.approx(49.5) and v["sd_hu"] == pytest.approx(ref.std(ddof=1))
    assert (v["min_hu"], v["max_hu"]) == (0.0, 99.0)
    assert roi_mask(m, hu.shape)[10:20, 10:20].all() and roi_mask(m, hu.shape).sum() == 100


def test_ellipse_roi_area_close_to_pi_a_b_and_outline():
    hu = np.zeros((3, 100, 100), np.int16)
    m = make("ellipse", 0, [(1, 20, 10), (1, 60, 90)], hu, (1.0, 1.0, 1.0))  # semi-axes 20 and 40
    assert m.values["area_mm2"] == pytest.approx(np.pi * 20 * 40, rel=0.03)
    assert m.values["mean_hu"] == 0.0 and m.values["sd_hu"] == 0.0
    ring = line_mask(m, hu.shape)
    assert ring[40, 10] and ring[20, 50] and not ring[40, 50]


def test_roundtrip_and_refusals():
    m = make("ruler", 2, [(1, 2, 3), (5, 6, 3)], _ct(), (1.0, 1.0, 1.0))
    back = from_json_obj(to_json_obj([m]))
    assert back == [m]
    with pytest.raises(MeasurementError):
        make("ruler", 0, [(1, 1, 1)], _ct(), (1.0, 1.0, 1.0))  # a click, not a drag
    with pytest.raises(MeasurementError):
        Measurement.from_dict({"kind": "angle", "axis": 0, "index": 0, "points": [[0, 0, 0]] * 2})


def test_measurements_are_saved_with_the_read_and_restored(tmp_path):
    from readerapp.editing.session import Prepared, ReadingSession, prepare
    from readerapp.forms import ReadForm
    from readerapp.readfile import load_read, save_read
    from readerapp.volume import CTVolume

    hu = _ct()
    vol = CTVolume(hu=hu, spacing=(0.5, 0.5, 3.0), series_uid="1.2.3.4")
    labels = np.ones(hu.shape, np.uint8)
    m = make("freehand", 0, [(4, 9.5, 9.5), (4, 9.5, 19.5), (4, 19.5, 19.5)], hu, vol.spacing_zyx)
    form = ReadForm.blank(with_fibrosis=False)
    out = save_read(tmp_path / "read", volume=vol, labels=labels, form=form, endpoints={},
                    measurements=[m])
    assert load_read(out).measurements == [m]
    p = prepare(vol, labels_path=out)
    s = ReadingSession(p, backend="numpy", use_journal=False)
    assert s.measurements == [m] and s.source == "loaded"
    # A read saved before measurements existed has none (and still loads).
    (out / "measurements.json").unlink()
    assert load_read(out).measurements == []
    assert ReadingSession(Prepared(vol, labels.copy(), "auto"), backend="numpy",
                          use_journal=False).measurements == []
