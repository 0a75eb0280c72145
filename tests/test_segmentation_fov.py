"""Segmentation where the field of view cuts the body: a small reconstruction field of view on a
large patient cuts the chest wall and the lung edge, and a scan cut through the mediastinum shows
one lung and part of the heart.

Phantoms (``make_chest_phantom(fov_crop_mm=...)`` lays the anatomy out for a wider field of view
than the image) give the known answer on the visible part; on the real chest CT, crops of the
scan must give the full scan's labels restricted to the crop.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
import pytest

from readerapp.phantom import Phantom, make_chest_phantom
from readerapp.segmentation import SegmentationResult, get_segmenter
from readerapp.volume import CTVolume


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


@cache
def cropped_phantom(crop_mm: float, pad_fov: bool, thick: bool = False
                    ) -> tuple[Phantom, SegmentationResult]:
    kw = dict(shape=(40, 200, 200), spacing=(1.6, 1.6, 5.0), seed=1) if thick else {}
    ph = make_chest_phantom(fov_crop_mm=crop_mm, pad_fov=pad_fov, **kw)
    return ph, get_segmenter().propose(ph.volume, backend="numpy")


def test_fov_crop_phantom_cuts_chest_wall_and_lungs():
    ph = make_chest_phantom(fov_crop_mm=85.0, pad_fov=False)
    lungs, body = ph.truth > 0, ph.parts["body"]
    for edge in (0, -1):  # both lungs and the chest wall reach the left and right image edges
        assert lungs[:, :, edge].any() and body[:, :, edge].any()
    assert not lungs[:, [0, -1], :].any()  # outside air is left in front and behind
    default = make_chest_phantom((20, 48, 48), (6.0, 6.0, 10.0))
    same = make_chest_phantom((20, 48, 48), (6.0, 6.0, 10.0), fov_crop_mm=0.0)
    np.testing.assert_array_equal(default.volume.hu, same.volume.hu)


@pytest.mark.parametrize("crop_mm,pad_fov,thick", [
    (85.0, False, False), (85.0, True, False), (100.0, False, True), (100.0, True, False),
])
def test_lungs_cut_by_the_field_of_view_are_kept(crop_mm, pad_fov, thick):
    """Before v1.2, lung reaching the image edge (or the padding of a circular field of view)
    was taken for outside air: most of both lungs were lost."""
    ph, res = cropped_phantom(crop_mm, pad_fov, thick)
    lab, truth = res.labels, ph.truth
    vox = ph.volume.voxel_volume_ml
    assert truth[:, :, [0, -1]].any() or (pad_fov and truth.any())
    assert dice(lab > 0, truth > 0) >= 0.97
    assert abs(float((lab > 0).sum()) / float((truth > 0).sum()) - 1.0) < 0.03
    # ground glass and consolidation, the latter cut by the image edge as well
    assert dice(lab >= 2, truth >= 2) >= 0.9
    pleural = ph.parts["pleural_consolidation"] & (truth > 0)
    assert pleural.sum() * vox > 10.0
    assert (lab[pleural] == 3).mean() > 0.8
    # nothing outside the body, nothing in the padding
    assert not ((lab > 0) & ~ph.parts["body"]).any()
    assert not (lab[ph.volume.hu < -1500] > 0).any()
    body = res.provenance["body"]
    assert body["edge_air_kept_ml"] > 100.0
    assert body["cut_by_image_edge"] == []  # cut alike on both sides
    assert res.provenance["version"] >= "1.2"


def test_uncut_phantom_keeps_no_edge_air():
    ph = make_chest_phantom((48, 96, 96), (3.3, 3.3, 4.0), seed=3)
    res = get_segmenter().propose(ph.volume, backend="numpy")
    assert res.provenance["body"]["edge_air_kept_ml"] == 0.0
    assert res.provenance["body"]["midline_from"] == "trachea"
    assert res.provenance["parameters"]["min_enclosed_fraction"] == 0.5


@pytest.mark.parametrize("keep", [0.45, 0.62])
def test_scan_cut_through_the_mediastinum(keep):
    """Only the low-x part of the image: one lung, the heart and aorta cut by the edge, with
    (0.62) or without (0.45) the trachea. Before v1.2 the visible body's centre, far off the
    midline, split the one lung in two and its "lateral" hull bites took the mediastinum."""
    ph = make_chest_phantom(fov_crop_mm=40.0, pad_fov=False, seed=5)
    nx = ph.volume.shape[2]
    cut = int(nx * keep)
    vol = CTVolume(hu=np.ascontiguousarray(ph.volume.hu[:, :, :cut]),
                   spacing=ph.volume.spacing, origin=ph.volume.origin)
    truth = ph.truth[:, :, :cut]
    res = get_segmenter().propose(vol, backend="numpy")
    lab = res.labels
    vox = vol.voxel_volume_ml
    lung_truth = truth > 0
    assert dice(lab > 0, lung_truth) >= 0.97
    false_lung = ((lab > 0) & ~lung_truth).sum() * vox
    assert false_lung < 0.02 * lung_truth.sum() * vox
    assert ((lab == 3) & (truth != 3)).sum() * vox < 2.0
    assert res.provenance["body"]["cut_by_image_edge"] == ["high_x"]


# --- the real chest CT ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _real(folder: str) -> tuple[CTVolume, np.ndarray]:
    from readerapp.io.dicom import load_series

    vol = load_series([folder])[0]
    return vol, get_segmenter().propose(vol, backend="numpy").labels


def _crop(vol: CTVolume, sl: tuple[slice, ...]) -> np.ndarray:
    sub = CTVolume(hu=np.ascontiguousarray(vol.hu[sl]), spacing=vol.spacing, origin=vol.origin,
                   direction=vol.direction)
    return get_segmenter().propose(sub, backend="numpy").labels


@pytest.mark.realdata
def test_real_ct_tight_field_of_view(chest_ct_dir):
    """The central 256 x 256 of the scan (both lungs and the chest wall cut by the edge) must
    give the full scan's lungs within the crop (before v1.2: 453 mL of about 4650 mL)."""
    vol, full = _real(str(chest_ct_dir))
    sl = np.s_[:, 128:384, 128:384]
    lab, ref = _crop(vol, sl), full[sl]
    vox = vol.voxel_volume_ml
    assert (lab[:, :, [0, -1]] > 0).any()  # the lungs do reach the edge
    assert abs(float((lab > 0).sum()) / float((ref > 0).sum()) - 1.0) < 0.05
    assert dice(lab > 0, ref > 0) >= 0.97
    assert abs(float((lab == 3).sum()) - float((ref == 3).sum())) * vox < 3.0
    assert abs(float((lab == 2).sum()) - float((ref == 2).sum())) * vox < 5.0


@pytest.mark.realdata
def test_real_ct_cut_through_the_mediastinum(chest_ct_dir):
    """The scan's low-x 300 columns (one lung, the heart cut): no false consolidation (before
    v1.2: 147 mL of it, the mediastinum taken for a dense bite of the lung)."""
    vol, full = _real(str(chest_ct_dir))
    sl = np.s_[:, :, :300]
    lab, ref = _crop(vol, sl), full[sl]
    vox = vol.voxel_volume_ml
    assert float((lab >= 2).sum()) * vox < float((ref >= 2).sum()) * vox + 3.0
    assert dice(lab > 0, ref > 0) >= 0.95
    assert abs(float((lab > 0).sum()) / float((ref > 0).sum()) - 1.0) < 0.06
