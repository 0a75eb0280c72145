"""Slice numbers as the PACS shows them: InstanceNumber kept through loading, captions, --slice."""

from __future__ import annotations

import numpy as np

from readerapp.slicenum import axial_caption, image_label, index_for_instance
from readerapp.volume import CTVolume


def _vol(nums=None, thickness=None):
    meta = {}
    if nums is not None:
        meta["instance_numbers"] = nums
    if thickness is not None:
        meta["slice_thickness_mm"] = thickness
    return CTVolume(hu=np.zeros((4, 3, 3), np.int16), spacing=(1.0, 1.0, 2.5),
                    origin=(0.0, 0.0, -130.0), meta=meta)


def test_caption_shows_the_instance_number_position_and_thickness():
    v = _vol([40, 39, 38, 37], thickness=5.0)
    assert axial_caption(v, 1) == "Im 39 \u00b7 z \u2212127.5 mm \u00b7 5.0 mm"
    assert image_label(v, 3) == "Im 37"
    assert index_for_instance(v, 38) == (2, None)
    z, note = index_for_instance(v, 99)
    assert z == 0 and "no image 99" in note


def test_without_instance_numbers_the_fallback_says_so():
    v = _vol()
    assert axial_caption(v, 0).startswith("Slice 1/4 (no image numbers)")
    assert "2.5 mm" in axial_caption(v, 0)  # thickness falls back to the spacing
    z, note = index_for_instance(v, 3)
    assert z == 2 and "no image numbers" in note


def test_loading_keeps_instance_numbers_and_the_scans_window(tmp_path):
    from readerapp.io.dicom import load_series
    from readerapp.io.dicom_write import write_synthetic_series

    hu = (np.arange(6 * 8 * 8).reshape(6, 8, 8) % 200 - 100).astype(np.int16)
    vol = CTVolume(hu=hu, spacing=(0.7, 0.7, 2.0), origin=(0, 0, -50))

    def window(k, ds):
        ds.WindowCenter = ["-600", "40"]
        ds.WindowWidth = ["1500", "400"]

    write_synthetic_series(vol, tmp_path / "s", shuffle_names=True, edit=window)
    loaded = load_series([tmp_path / "s"])[0]
    # The writer numbers images against the geometry (from the head): the loader orders by
    # position and keeps each slice's own number.
    assert loaded.meta["instance_numbers"] == [6, 5, 4, 3, 2, 1]
    assert loaded.meta["window_center"] == -600.0 and loaded.meta["window_width"] == 1500.0
    assert axial_caption(loaded, 0).startswith("Im 6 \u00b7 z \u221250.0 mm \u00b7 2.0 mm")
