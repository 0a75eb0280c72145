"""Segmentation and calibration on the real chest CT (skipped where ../shared/data is absent).

The scan (TCIA Lung-PET-CT-Dx A0001, 64 x 5 mm slices) has no COVID-19 findings, so lesions of
known size and density are inserted into its lungs: a ground-glass sphere, a consolidation
sphere, and a consolidation sphere centred on the lateral pleura, half of it against the chest
wall (the case threshold-based masks lose).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi

from readerapp.calibration import calibration_check
from readerapp.labels import Label
from readerapp.segmentation import get_segmenter
from readerapp.volume import CTVolume

pytestmark = pytest.mark.realdata

#: Volume tolerance for inserted lesions (relative): their surface voxels share a 5 mm slice
#: with lung, so each slice's partial volume decides them (1.4, measured: 1-11 %).
INSERTED_VOLUME_TOLERANCE = 0.1


@lru_cache(maxsize=2)
def load(folder: str) -> CTVolume:
    try:
        from readerapp.io.dicom import load_series
    except ImportError:  # the loader is another module's; fall back to plain pydicom
        return _load_with_pydicom(Path(folder))
    return load_series([folder])[0]


def _load_with_pydicom(folder: Path) -> CTVolume:
    import pydicom

    ds = [pydicom.dcmread(f) for f in sorted(folder.glob("*.dcm"))]
    ds.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    hu = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in ds])
    dz = float(ds[1].ImagePositionPatient[2]) - float(ds[0].ImagePositionPatient[2])
    sy, sx = (float(v) for v in ds[0].PixelSpacing)
    return CTVolume(hu=hu.astype(np.int16), spacing=(sx, sy, dz))


@lru_cache(maxsize=2)
def segmented(folder: str):
    vol = load(folder)
    return vol, get_segmenter().propose(vol, backend="numpy")


def test_real_chest_ct_lungs(chest_ct_dir):
    vol, res = segmented(str(chest_ct_dir))
    lab = res.labels
    vox = vol.voxel_volume_ml
    lung = lab > 0
    assert 2000 < lung.sum() * vox < 8000
    # both lungs: substantial lung on either side of the trachea
    cx = int(round(np.nonzero(res.extras["trachea"])[2].mean()))
    right, left = lung[:, :, :cx].sum() * vox, lung[:, :, cx:].sum() * vox
    assert right > 1000 and left > 1000
    # trachea found and excluded (with its wall)
    trachea = res.extras["trachea"]
    assert trachea.sum() * vox > 10
    assert not (lung & trachea).any()
    # no COVID findings: a small lesion fraction (vessels, the tumour's rim, dependent density)
    assert (lab >= 2).sum() / lung.sum() < 0.03
    # no lung outside the body or in padding
    assert not (lung & ~res.extras["body"]).any()
    assert not lung[vol.hu < -1500].any()
    assert res.warnings == []
    assert res.total_seconds < 30


def test_real_chest_ct_calibration(chest_ct_dir):
    vol, res = segmented(str(chest_ct_dir))
    cal = calibration_check(vol, res.labels, res.extras)
    assert cal.tracheal_air_hu is not None and -1020 <= cal.tracheal_air_hu <= -960
    assert cal.aortic_blood_hu is not None and 25 <= cal.aortic_blood_hu <= 65
    assert not cal.contrast_enhanced


def _sphere(shape, spacing_zyx, centre, radius_mm):
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    sz, sy, sx = spacing_zyx
    return (((zz - centre[0]) * sz) ** 2 + ((yy - centre[1]) * sy) ** 2
            + ((xx - centre[2]) * sx) ** 2) <= radius_mm ** 2


def test_inserted_lesions_are_recovered(chest_ct_dir):
    vol, res = segmented(str(chest_ct_dir))
    lung = res.labels > 0
    sp = vol.spacing_zyx
    rng = np.random.default_rng(11)
    depth = ndi.distance_transform_edt(lung, sampling=sp)
    nz = vol.shape[0]
    zmid = slice(nz // 4, 3 * nz // 4)
    cx = vol.shape[2] // 2

    def deep_point(x_lo: int, x_hi: int, min_depth: float) -> tuple[int, int, int]:
        d = np.zeros_like(depth)
        d[zmid, :, x_lo:x_hi] = depth[zmid, :, x_lo:x_hi]
        idx = np.argwhere(d >= min_depth)
        return tuple(idx[rng.integers(len(idx))])

    # a ground-glass sphere in one lung, a consolidation sphere in the other
    ggo_c = deep_point(0, cx, 18.0)
    cons_c = deep_point(cx, vol.shape[2], 15.0)
    # a consolidation centred on the lateral pleura of the low-x lung at mid-height
    z = nz // 2 + 4
    cols = np.flatnonzero(lung[z].any(axis=0) & (np.arange(vol.shape[2]) < cx))
    x_edge = cols[0]
    rows = np.flatnonzero(lung[z, :, x_edge])
    pleural_c = (z, int(rows.mean()), int(x_edge))

    ggo = _sphere(vol.shape, sp, ggo_c, 15.0) & lung
    cons = _sphere(vol.shape, sp, cons_c, 12.0) & lung
    pleural = _sphere(vol.shape, sp, pleural_c, 18.0) & lung
    cons |= pleural
    ggo &= ~cons
    hu = vol.hu.copy()
    texture = (vol.hu.astype(np.float32) - ndi.uniform_filter(vol.hu.astype(np.float32), 5))
    hu[ggo] = np.clip(-550 + 0.5 * texture[ggo], -740, -310).astype(np.int16)
    hu[cons] = np.clip(20 + 0.5 * texture[cons], -280, 45).astype(np.int16)
    vol2 = CTVolume(hu=hu, spacing=vol.spacing, direction=vol.direction)
    res2 = get_segmenter().propose(vol2, backend="numpy")
    lab2 = res2.labels

    # compare near the inserted lesions (the scan has its own small lesion-range findings)
    def near(m: np.ndarray) -> np.ndarray:
        return ndi.binary_dilation(m, iterations=3)

    got = (lab2 >= 2) & near(ggo | cons)
    want = ggo | cons
    dice = 2 * (got & want).sum() / (got.sum() + want.sum())
    assert dice >= 0.7
    vox = vol.voxel_volume_ml
    # each class is counted around its own spheres: the partial-volume rim of a consolidation
    # against lung or chest wall reads as ground glass, as it would in a real scan
    ggo_sphere = _sphere(vol.shape, sp, ggo_c, 15.0) & lung
    for value, truth, around in ((Label.GGO, ggo, near(ggo_sphere)),
                                 (Label.CONSOLIDATION, cons, near(cons))):
        v_got = ((lab2 == value) & around).sum() * vox
        v_want = truth.sum() * vox
        assert abs(v_got - v_want) <= INSERTED_VOLUME_TOLERANCE * v_want, (value.name, v_got, v_want)
    # the pleural lesion stays inside the lung mask and is called consolidation
    assert (lab2[pleural] > 0).mean() >= 0.9
    assert (lab2[pleural] == Label.CONSOLIDATION).mean() >= 0.85


def test_real_chest_ct_no_liver_or_chest_wall_in_lung(chest_ct_dir):
    """No organ dome, chest wall or mediastinum in the lung mask of this no-COVID scan.

    An earlier version labelled a flat slab of the liver dome (and a square of "consolidation"
    at the left base) as lung: the hull's row-wise medial cut and the closing along z carved
    them out of the organs under the lung bases. Measured on this scan: lung voxels at or above
    -100 HU were 3.5 % of the lung before the fix and 1.6 % after (vessels and the tumour's
    bite remain); in the lowest quarter of the lungs 9.9 % before, 0.6 % after; 2-D lesion
    pieces there up to 490 mm^2 before, none after.
    """
    vol, res = segmented(str(chest_ct_dir))
    lab, hu = res.labels, vol.hu
    lung = lab > 0
    dense = lung & (hu >= -100)
    assert dense.sum() / lung.sum() < 0.02
    zs = np.flatnonzero(lung.any(axis=(1, 2)))
    low = slice(zs[0], zs[0] + int(0.25 * zs.size) + 1)  # the bases (slices ascend upwards)
    assert vol.direction[8] > 0
    assert dense[low].sum() / lung[low].sum() < 0.015
    px_mm2 = vol.spacing[0] * vol.spacing[1]
    for z in range(low.start, low.stop):
        pieces, n = ndi.label(lab[z] >= 2)
        if n:
            assert np.bincount(pieces.ravel())[1:].max() * px_mm2 < 50.0, z
    # chest wall / mediastinum: dense voxels (3x3 mean above 0 HU) more than ~3 mm outside
    # the convex hull of each lung's aerated part in their slice
    from scipy.spatial import ConvexHull, Delaunay

    med = ndi.uniform_filter(hu.astype(np.float32), size=(1, 3, 3))
    reach = int(np.ceil(3.0 / vol.spacing[0]))
    aerated = lung & (hu < -400)
    cx = int(round(np.nonzero(res.extras["trachea"])[2].mean()))
    outside_ml = 0.0
    for z in zs:
        for sl in (slice(0, cx), slice(cx, None)):
            pts = np.argwhere(aerated[z][:, sl])
            q = np.argwhere(lung[z][:, sl] & (med[z][:, sl] > 0))
            if len(pts) < 10 or len(q) == 0:
                continue
            inside = Delaunay(pts[ConvexHull(pts).vertices]).find_simplex(q) >= 0
            far = ~ndi.binary_dilation(aerated[z][:, sl], iterations=reach)[q[:, 0], q[:, 1]]
            outside_ml += float((~inside & far).sum()) * vol.voxel_volume_ml
    assert outside_ml < 2.0  # measured 0.16 mL (the tumour's edge)


def test_inserted_dependent_consolidation_at_the_bases_is_kept(chest_ct_dir):
    """The other side of the liver-dome guard: consolidation filling the back 35 mm of both
    lower lobes over 25 mm of slices (what gravity-dependent COVID-19 pneumonia does, against
    the posterior chest wall just above the domes) must stay lung and be consolidation.
    Measured: 93 % (right) and 94 % (left) kept, the same as before the guard."""
    vol, res = segmented(str(chest_ct_dir))
    lung = res.labels > 0
    sp = vol.spacing_zyx
    zs = np.flatnonzero(lung.any(axis=(1, 2)))
    zc = zs[0] + int(0.27 * zs.size)  # just above the domes' tops
    cx = int(round(np.nonzero(res.extras["trachea"])[2].mean()))
    zz, yy = np.ogrid[: vol.shape[0], : vol.shape[1]]
    hu = vol.hu.copy()
    texture = vol.hu.astype(np.float32) - ndi.uniform_filter(vol.hu.astype(np.float32), 5)
    inserted = []
    for xs in (slice(0, cx), slice(cx, None)):
        side = np.zeros_like(lung)
        side[:, :, xs] = lung[:, :, xs]
        y_back = np.nonzero(side[zc])[0].max()
        cons = side & ((np.abs(zz - zc) * sp[0] <= 12.5) & ((y_back - yy) * sp[1] <= 35.0))[..., None]
        hu[cons] = np.clip(20 + 0.5 * texture[cons], -280, 45).astype(np.int16)
        inserted.append(cons)
    res2 = get_segmenter().propose(CTVolume(hu=hu, spacing=vol.spacing, direction=vol.direction),
                                   backend="numpy")
    for cons in inserted:
        assert cons.sum() * vol.voxel_volume_ml > 30  # mL: a big lesion
        assert (res2.labels[cons] > 0).mean() >= 0.85
        assert (res2.labels[cons] == Label.CONSOLIDATION).mean() >= 0.85


def test_chest_wall_completion_adds_nothing_to_healthy_lungs(chest_ct_dir):
    """The ribs' completion (1.3) leaves this scan's mask as it was: every sliver of chest wall
    between its lungs and ribs is dropped (measured: 0 mL added; 5554 mL lung, as in 1.2)."""
    vol, res = segmented(str(chest_ct_dir))
    cw = res.provenance["chest_wall"]
    assert cw and all(side["added_ml"] == 0.0 for side in cw.values())
    assert all(side["wall_mm"] < 6.0 for side in cw.values())  # the ribs are at the pleura


def test_inserted_consolidated_back_over_the_whole_height_is_kept(chest_ct_dir):
    """Consolidation filling the back 30 mm of both lungs in every slice (severe COVID-19):
    the aerated lung's back is then flat, and only the rib cage shows where the lung ends.
    Measured: 77 % kept as lung (0.3 % in 1.2; the rest is the bases and apices, where the
    slab takes the whole lung of the slice), 64 mL of mask outside the original lungs (23 mL
    without the completion), the liver untouched."""
    vol, res = segmented(str(chest_ct_dir))
    lung = res.labels > 0
    sp = vol.spacing_zyx
    cx = int(round(np.nonzero(res.extras["trachea"])[2].mean()))
    yy = np.arange(vol.shape[1])[:, None]
    hu = vol.hu.copy()
    texture = vol.hu.astype(np.float32) - ndi.uniform_filter(vol.hu.astype(np.float32), 5)
    cons = np.zeros_like(lung)
    for xs in (slice(0, cx), slice(cx, None)):
        side = np.zeros_like(lung)
        side[:, :, xs] = lung[:, :, xs]
        for z in np.flatnonzero(side.any(axis=(1, 2))):
            y_back = np.nonzero(side[z])[0].max()
            cons[z] |= side[z] & ((y_back - yy) * sp[1] <= 30.0)
    hu[cons] = np.clip(20 + 0.5 * texture[cons], -280, 45).astype(np.int16)
    res2 = get_segmenter().propose(CTVolume(hu=hu, spacing=vol.spacing, direction=vol.direction),
                                   backend="numpy")
    lab2 = res2.labels
    assert cons.sum() * vol.voxel_volume_ml > 600  # mL
    assert (lab2[cons] > 0).mean() >= 0.7
    assert (lab2[cons] == Label.CONSOLIDATION).mean() >= 0.7
    outside = (lab2 > 0) & ~lung
    assert outside.sum() * vol.voxel_volume_ml < 100.0  # mL


@lru_cache(maxsize=1)
def thin_segmented(folder: str):
    """The scan on 1.25 mm slices (interpolated along z, with noise) and its proposal."""
    from readerapp.bench_accuracy import thin_version

    vol = thin_version(load(folder))
    return vol, get_segmenter().propose(vol, backend="numpy")


@pytest.mark.parametrize("thin", [False, True], ids=["5mm", "1.25mm"])
def test_inserted_lesions_without_halo(chest_ct_dir, thin):
    """Six spheres (ground glass and consolidation, 8-15 mm) inserted deep in the lungs, on the
    scan's own 5 mm slices and on a 1.25 mm version of it: recovered within 10 % on average,
    none grossly over-grown (1.3, measured the same way: mean 32 % at 5 mm, 16 % at 1.25 mm)."""
    from readerapp.bench_accuracy import inserted_errors

    vol, base = (thin_segmented if thin else segmented)(str(chest_ct_dir))
    r = inserted_errors(vol, seed=3 if thin else 11, base=base)
    assert r["mean_abs_error_pct"] <= 10.0, r
    assert r["max_abs_error_pct"] <= 15.0, r
    assert all(row["dice"] >= 0.9 for row in r["lesions"]), r


def test_no_lesion_in_the_hila_of_a_scan_without_hilar_disease(chest_ct_dir):
    from readerapp.bench_accuracy import hilar_lesion_ml

    for vol, res in (segmented(str(chest_ct_dir)), thin_segmented(str(chest_ct_dir))):
        r = hilar_lesion_ml(vol, res)
        assert r["hila_ml"] is not None and r["hila_ml"] <= 3.0, r
