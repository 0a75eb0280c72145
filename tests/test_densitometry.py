"""Densitometry: exact endpoints on known label maps, fast paths equal to the obvious one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from readerapp.analysis import measure
from readerapp.backend import cupy_available
from readerapp.densitometry import (
    DensityAccumulator,
    Endpoints,
    compute_table,
    table_from_scratch,
)
from readerapp.densitometry._numpy import _table_chunked
from readerapp.volume import PADDING_HU, CTVolume

ENDPOINT_KEYS = {
    "lung_volume_ml", "lesion_volume_ml", "lesion_pct", "ggo_volume_ml", "ggo_pct",
    "consolidation_volume_ml", "consolidation_pct", "lesion_weight_hu_voxel",
    "lesion_weight_hu_ml", "lesion_mass_g", "density_histogram", "mean_lung_hu",
}


def random_case(seed: int, shape=(17, 23, 29)):
    rng = np.random.default_rng(seed)
    hu = rng.integers(-3024, 3072, size=shape).astype(np.int16)
    # Concentrate values near the bin edges, where off-by-one errors live.
    edges = rng.choice([-751, -750, -749, -301, -300, -299, 49, 50, 51, -1024, 1023, 1024], size=shape)
    hu = np.where(rng.random(shape) < 0.5, edges, hu).astype(np.int16)
    labels = rng.integers(0, 4, size=shape).astype(np.uint8)
    return hu, labels


@pytest.mark.parametrize("seed", range(5))
def test_fast_table_equals_obvious_computation(seed):
    hu, labels = random_case(seed)
    ref = table_from_scratch(hu, labels)
    assert compute_table(hu, labels, backend="numpy") == ref
    assert _table_chunked(hu.ravel(), labels.ravel(), 1000) == ref


def test_known_label_map_gives_exact_endpoints():
    shape = (4, 10, 10)
    hu = np.full(shape, -900, np.int16)
    labels = np.zeros(shape, np.uint8)
    labels[:, :, :5] = 1  # 200 lung voxels at -900 HU
    labels[0, :, 5:] = 2  # 50 GGO voxels at -500 HU
    hu[0, :, 5:] = -500
    labels[1, :5, 5:] = 3  # 25 consolidation voxels at +20 HU
    hu[1, :5, 5:] = 20
    labels[1, 5:, 5:] = 3  # 25 consolidation voxels at +60 HU (top bin)
    hu[1, 5:, 5:] = 60
    vol = CTVolume(hu=hu, spacing=(0.5, 0.8, 2.0))
    vml = 0.5 * 0.8 * 2.0 / 1000.0
    ep = measure(vol, labels, backend="numpy").endpoints
    n_lung, n_ggo, n_cons = 300, 50, 50
    assert ep.voxel_counts == {"lung": n_lung, "lesion": 100, "ggo": n_ggo, "consolidation": n_cons}
    assert ep.lung_volume_ml == pytest.approx(n_lung * vml, rel=1e-12)
    assert ep.lesion_pct == pytest.approx(100 * 100 / 300, rel=1e-12)
    assert ep.ggo_pct == pytest.approx(100 * 50 / 300, rel=1e-12)
    assert ep.consolidation_volume_ml == pytest.approx(50 * vml, rel=1e-12)
    weight = 50 * -500 + 25 * 20 + 25 * 60
    assert ep.lesion_weight_hu_voxel == weight
    assert ep.lesion_weight_hu_ml == pytest.approx(weight * vml, rel=1e-12)
    mass = (50 * 500 + 25 * 1020 + 25 * 1060) / 1000 * vml
    assert ep.lesion_mass_g == pytest.approx(mass, rel=1e-12)
    assert ep.mean_lung_hu == pytest.approx((200 * -900 + weight) / 300, rel=1e-12)
    vols = [b["volume_ml"] for b in ep.density_histogram]
    assert vols == pytest.approx([200 * vml, 50 * vml, 25 * vml, 25 * vml], rel=1e-12)
    assert sum(b["pct"] for b in ep.density_histogram) == pytest.approx(100.0)
    assert [b["lower_hu"] for b in ep.density_histogram] == [None, -750, -300, 50]
    assert [b["upper_hu"] for b in ep.density_histogram] == [-750, -300, 50, None]


def test_json_has_exactly_the_protocol_keys_and_is_strict_json():
    hu, labels = random_case(1)
    vol = CTVolume(hu=hu, spacing=(1, 1, 1), series_uid="1.2.3")
    out = measure(vol, labels, backend="numpy").to_json()
    assert set(out) >= ENDPOINT_KEYS
    assert set(Endpoints.KEYS) == ENDPOINT_KEYS
    for key in ("series_uid", "spacing", "shape", "warnings", "software_version", "backend", "timings"):
        assert key in out
    json.dumps(out, allow_nan=False)
    assert len(out["density_histogram"]) == 4


def test_label_map_without_lung_is_measured_as_undefined_and_warned():
    """A proportion of a zero volume is not 0 %: null, with a warning (``analyze`` refuses a
    series whose segmentation finds no lung: tests/test_unmeasurable.py)."""
    vol = CTVolume(hu=np.zeros((2, 3, 4), np.int16), spacing=(1, 1, 1), series_uid="1.2.3")
    res = measure(vol, np.zeros((2, 3, 4), np.uint8), backend="numpy")
    out = res.to_json()
    assert out["lesion_pct"] is None and out["null_reasons"]["lesion_pct"]
    assert any("holds no lung" in w for w in out["warnings"])


def test_outputs_hold_no_nan():
    """Every value in the JSON is finite or null (a NaN diagnostic becomes null, with why)."""
    hu = np.full((2, 4, 4), -850, np.int16)
    res = measure(CTVolume(hu=hu, spacing=(1, 1, 1)), np.ones((2, 4, 4), np.uint8),
                  backend="numpy", provenance={"x": float("nan"), "y": [np.float32("inf"), 1.5]})
    out = res.to_json()
    json.dumps(out, allow_nan=False)
    assert out["segmentation"] == {"x": None, "y": [None, 1.5]}
    assert {"segmentation.x", "segmentation.y.0"} <= set(out["null_reasons"])


def test_empty_lung_gives_null_percentages_with_reasons_never_zero_or_nan():
    """The live table of an empty lung (a reader mid-edit; ``measure`` refuses one outright)."""
    out = compute_table(np.zeros((2, 3, 4), np.int16), np.zeros((2, 3, 4), np.uint8),
                        backend="numpy").endpoints(0.001).to_dict()
    assert out["lung_volume_ml"] == 0 and out["lesion_volume_ml"] == 0
    undefined = ["lesion_pct", "ggo_pct", "consolidation_pct", "mean_lung_hu"]
    for k in undefined:
        assert out[k] is None, k  # a proportion of a zero volume is never 0
        assert out["null_reasons"][k], k
    for b in out["density_histogram"]:
        assert b["volume_ml"] == 0 and b["pct"] is None and b["mean_hu"] is None
        assert f"density_histogram.{b['name']}.pct" in out["null_reasons"]
    text = json.dumps(out, allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text


def test_defined_values_carry_no_null_reasons():
    hu = np.full((2, 3, 4), -850, np.int16)
    labels = np.ones((2, 3, 4), np.uint8)
    out = measure(CTVolume(hu=hu, spacing=(1, 1, 1)), labels, backend="numpy").to_json()
    assert out["lesion_pct"] == 0.0 and out["mean_lung_hu"] == -850
    # only the empty bins' means are null, each with its reason
    assert set(out["null_reasons"]) == {
        f"density_histogram.{b['name']}.mean_hu" for b in out["density_histogram"] if b["voxels"] == 0
    }


def test_labels_on_padding_are_not_counted_and_warned():
    hu = np.full((2, 4, 4), -850, np.int16)
    hu[:, 0, :] = PADDING_HU
    vol = CTVolume(hu=hu, spacing=(1, 1, 1))
    res = measure(vol, np.ones((2, 4, 4), np.uint8), backend="numpy")
    assert res.endpoints.voxel_counts["lung"] == 24
    assert any("field of view" in w for w in res.warnings)


def test_labels_out_of_range_are_refused():
    from readerapp.errors import LabelMapError

    vol = CTVolume(hu=np.zeros((2, 2, 2), np.int16), spacing=(1, 1, 1))
    with pytest.raises(LabelMapError, match="value 7"):
        measure(vol, np.full((2, 2, 2), 7, np.uint8))
    with pytest.raises(LabelMapError, match="value -1"):
        measure(vol, np.full((2, 2, 2), -1, np.int16))


@pytest.mark.parametrize("seed", range(3))
def test_incremental_updates_equal_scratch_after_many_random_edits(seed):
    rng = np.random.default_rng(seed)
    hu, labels = random_case(seed + 10, shape=(20, 40, 40))
    acc = DensityAccumulator(hu, labels, backend="numpy", voxel_volume_ml=0.7)
    labels = labels.copy()
    flat = labels.reshape(-1)
    for _ in range(300):
        kind = rng.integers(3)
        if kind == 0:  # a brush-like blob of neighbouring voxels
            c = rng.integers(0, flat.size)
            idx = np.unique(np.clip(c + rng.integers(-50, 50, 60), 0, flat.size - 1))
        elif kind == 1:  # scattered voxels
            idx = np.unique(rng.integers(0, flat.size, 40))
        else:  # one voxel
            idx = np.array([rng.integers(0, flat.size)])
        new = rng.integers(0, 4, idx.size).astype(np.uint8)
        old = flat[idx].copy()
        flat[idx] = new
        acc.apply(idx, old, new)
    assert acc.table == table_from_scratch(hu, labels)
    assert acc.endpoints() == compute_table(hu, labels, "numpy").endpoints(0.7)


def test_fine_histogram_sums_to_lung_counts():
    hu, labels = random_case(3)
    acc = DensityAccumulator(hu, labels, backend="numpy")
    edges, counts = acc.fine_histogram()
    assert counts.shape == (3, edges.size - 1)
    for lab in (1, 2, 3):
        assert counts[lab - 1].sum() == np.count_nonzero(labels == lab)


def test_phantom_endpoints_match_truth_counts(small_phantom):
    vol, truth = small_phantom.volume, small_phantom.truth
    ep = measure(vol, truth, backend="numpy").endpoints
    assert ep.voxel_counts["ggo"] == int(np.count_nonzero(truth == 2))
    assert ep.lung_volume_ml == pytest.approx(np.count_nonzero(truth) * vol.voxel_volume_ml)


@pytest.mark.gpu
@pytest.mark.skipif(not cupy_available(), reason="no CUDA GPU with CuPy here")
@pytest.mark.parametrize("seed", range(3))
def test_cupy_equals_numpy(seed):
    hu, labels = random_case(seed, shape=(33, 64, 65))
    assert compute_table(hu, labels, backend="cupy") == compute_table(hu, labels, backend="numpy")
    acc_c = DensityAccumulator(hu, labels, backend="cupy", voxel_volume_ml=0.5)
    acc_n = DensityAccumulator(hu, labels, backend="numpy", voxel_volume_ml=0.5)
    rng = np.random.default_rng(seed)
    flat = labels.reshape(-1).copy()
    for _ in range(50):
        idx = np.unique(rng.integers(0, flat.size, 100))
        new = rng.integers(0, 4, idx.size).astype(np.uint8)
        old = flat[idx].copy()
        flat[idx] = new
        acc_c.apply(idx, old, new)
        acc_n.apply(idx, old, new)
    assert acc_c.table == acc_n.table
    e_c, e_n = acc_c.endpoints().to_dict(), acc_n.endpoints().to_dict()
    for k, v in e_n.items():
        if isinstance(v, float):
            assert e_c[k] == pytest.approx(v, rel=1e-9)
