"""Chest-wall-bounded completion (``_chestwall``): a lung consolidated over its whole back.

In severe COVID-19 the dependent lung is consolidated over its whole height, so the aerated
lung's back is flat or convex and closing, hole filling and hull completion add nothing: before
1.3 the classical method kept 8 of 228 mL (posterior 15 %) and 7 of 799 mL (30 %) of such
consolidation. The phantom's ``ribs_at_pleura`` puts the ribs 3 mm outside the lungs, as in
real anatomy, so the rib cage bounds the lung.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from readerapp.labels import Label
from readerapp.phantom import make_chest_phantom
from readerapp.segmentation import get_segmenter
from readerapp.segmentation._chestwall import _fill_circular
from readerapp.segmentation.classical import ClassicalParameters, ClassicalSegmenter
from readerapp.volume import CTVolume


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


def severe(frac_post: float, ggo_frac: float, **kw):
    """The posterior ``frac_post`` of both lungs (every slice) consolidated (20 HU), and
    ground-glass patches (-550 HU) over ``ggo_frac`` of the rest; returns (volume, truth, parts)."""
    ph = make_chest_phantom((64, 192, 192), (1.8, 1.8, 4.0), noise_hu=0, lesions=False, seed=5,
                            **kw)
    t, hu = ph.truth.copy(), ph.volume.hu.astype(np.float32)
    lung = t > 0
    yy = np.nonzero(lung)[1]
    cut = yy.max() - (yy.max() - yy.min()) * frac_post
    post = lung & (np.arange(t.shape[1])[None, :, None] > cut)
    rng = np.random.default_rng(1)
    f = gaussian_filter(rng.standard_normal(t.shape).astype(np.float32), (2, 6, 6))
    ggo = lung & ~post & (f > np.quantile(f[lung & ~post], 1 - ggo_frac)) & ~ph.parts["vessels"]
    hu[post], t[post] = 20, Label.CONSOLIDATION
    hu[ggo], t[ggo] = -550, Label.GGO
    pad = hu < -1500
    hu = hu + rng.normal(0, 15, hu.shape)
    hu[pad] = -3024
    vol = CTVolume(hu=np.clip(np.rint(hu), -3024, 3071).astype(np.int16),
                   spacing=(1.8, 1.8, 4.0), origin=ph.volume.origin)
    return vol, t, ph.parts


@pytest.mark.parametrize("frac_post,ggo_frac", [(0.15, 0.2), (0.3, 0.3)])
def test_consolidated_back_of_both_lungs_is_kept(frac_post, ggo_frac):
    """Measured (1.3): 221/228 mL and 790/799 mL of consolidation, lung Dice 0.993 and 0.984
    (1.2: 8 and 7 mL, Dice 0.964 and 0.870; 45 % posterior: 1270/1564 mL, Dice 0.937)."""
    vol, t, parts = severe(frac_post, ggo_frac, ribs_at_pleura=True)
    res = get_segmenter().propose(vol, backend="numpy")
    lab = res.labels
    cons_truth = float((t == Label.CONSOLIDATION).sum())
    assert (lab == Label.CONSOLIDATION).sum() >= 0.8 * cons_truth
    assert (lab[t == Label.CONSOLIDATION] == Label.CONSOLIDATION).mean() >= 0.8
    assert _dice(lab > 0, t > 0) >= 0.95
    # nothing of the mediastinum, the spine or the ribs; where consolidated lung touches the
    # aorta (both soft tissue) a voxel of its rim may go (measured 13 of 8415 at 30 %)
    assert (lab[parts["aorta"]] > 0).mean() < 0.01
    assert not (lab[parts["bone"]] > 0).any()
    outside = (lab > 0) & (t == 0)
    assert outside.sum() * vol.voxel_volume_ml < 0.03 * (t > 0).sum() * vol.voxel_volume_ml
    cw = res.provenance["chest_wall"]
    assert cw["low_x"]["added_ml"] > 50 and cw["high_x"]["added_ml"] > 50
    assert res.provenance["version"] == "1.3"


def test_without_it_the_consolidated_back_is_lost():
    """The case the completion is for: without it, the method of 1.2 keeps almost nothing."""
    vol, t, _ = severe(0.3, 0.3, ribs_at_pleura=True)
    seg = ClassicalSegmenter(ClassicalParameters(chest_wall_completion=False))
    lab = seg.propose(vol, backend="numpy").labels
    assert (lab == Label.CONSOLIDATION).sum() < 0.1 * (t == Label.CONSOLIDATION).sum()


def test_liver_dome_stays_out_with_a_consolidated_back():
    """Liver and spleen domes under lung bases whose back is consolidated: the organs must not
    become lung (the depth rule and the per-slice limits keep them out)."""
    vol, t, parts = severe(0.3, 0.3, ribs_at_pleura=True, liver_dome=True)
    lab = get_segmenter().propose(vol, backend="numpy").labels
    assert (lab[parts["liver"]] > 0).sum() * vol.voxel_volume_ml < 2.0  # mL
    assert (lab[t == Label.CONSOLIDATION] > 0).mean() >= 0.7


def test_no_ribs_at_the_pleura_no_completion():
    """The old phantom's ribs lie ~20 mm outside the lungs: that is chest wall, not lung, and
    the completion adds nothing (the wall is thicker than ``cage_max_wall_mm``)."""
    ph = make_chest_phantom((40, 128, 128), (2.5, 2.5, 6.0), seed=2)
    res = get_segmenter().propose(ph.volume, backend="numpy")
    for side in res.provenance["chest_wall"].values():
        assert side["added_ml"] == 0.0
        assert side["wall_mm"] is None or side["wall_mm"] > 12.0


def test_healthy_lungs_with_ribs_at_the_pleura_gain_nothing():
    ph = make_chest_phantom((48, 160, 160), (2.0, 2.0, 5.0), seed=3, ribs_at_pleura=True)
    res = get_segmenter().propose(ph.volume, backend="numpy")
    for side in res.provenance["chest_wall"].values():
        assert side["added_ml"] == 0.0
        assert side["wall_mm"] < 6.0  # the ribs are found 3 mm outside the lung
    lung, truth = res.labels > 0, ph.truth > 0
    assert _dice(lung, truth) >= 0.97


def test_ribs_at_pleura_phantom():
    """Same lungs and truth; ribs 3 mm outside the lungs in bands along z; default unchanged."""
    kw = dict(shape=(40, 96, 96), spacing=(3.3, 3.3, 2.0), noise_hu=0.0)
    a = make_chest_phantom(**kw)
    b = make_chest_phantom(ribs_at_pleura=True, **kw)
    assert np.array_equal(a.truth, b.truth)
    assert "bone" not in a.parts
    bone = b.parts["bone"]
    in_fov = b.volume.hu > -1500
    assert (b.volume.hu[bone & in_fov] >= 400).all() and not (bone & (b.truth > 0)).any()
    # discrete ribs: some lung slices have no rib beside the lung's lateral side
    lateral = bone[:, :, :20].any(axis=(1, 2))
    lung_z = (b.truth > 0).any(axis=(1, 2))
    assert lateral[lung_z].any() and not lateral[lung_z].all()


def test_fill_circular():
    r = np.array([1.0, np.nan, 3.0, np.nan, np.nan, np.nan, np.nan, 5.0])
    out = _fill_circular(r, 2)
    assert out[1] == 2.0
    assert np.isnan(out[3:7]).all()  # a gap longer than 2 bins stays open
    r2 = np.array([np.nan, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 4.0])
    assert _fill_circular(r2, 2)[0] == 3.0  # wraps round the circle
