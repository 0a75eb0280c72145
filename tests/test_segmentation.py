"""Automatic segmentation on synthetic chest phantoms with exactly known answers.

Each phantom variant is segmented once (module-scoped cache); the tests then check lung and
lesion overlap with the truth, the volumes, the airway and vessel exclusions, dense lung against
the chest wall, padding, and the result's provenance and timings.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from readerapp.backend import cupy_available
from readerapp.errors import BackendUnavailableError, ReaderAppError
from readerapp.labels import Label
from readerapp.phantom import Phantom, make_chest_phantom
from readerapp.progress import Cancelled
from readerapp.segmentation import (
    SegmentationResult,
    Segmenter,
    available_segmenters,
    get_segmenter,
    register_segmenter,
)
from readerapp.volume import PADDING_HU, CTVolume

#: Phantom variants: different grids, slice thicknesses, noise levels and seeds.
VARIANTS: dict[str, dict] = {
    "default": {},
    "thick_slices": dict(shape=(40, 200, 200), spacing=(1.6, 1.6, 5.0), seed=1),
    "noisy": dict(noise_hu=35.0, seed=2),
    "coarse_inplane": dict(shape=(96, 128, 128), spacing=(2.5, 2.5, 2.0), seed=3),
    "fine": dict(shape=(100, 224, 224), spacing=(1.43, 1.43, 2.0), seed=4),
}
#: Volume tolerance for ground glass and consolidation (relative to the true volume): lesion
#: edges are decided voxel by voxel, so the error is a thin shell (measured 0-4 %).
VOLUME_TOLERANCE = 0.15


@cache
def segmented(name: str, **extra) -> tuple[Phantom, SegmentationResult]:
    kw = dict(VARIANTS.get(name, {}), **extra)
    ph = make_chest_phantom(**kw)
    return ph, get_segmenter("classical").propose(ph.volume, backend="numpy")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


def test_registry_and_protocol():
    assert "classical" in available_segmenters()
    seg = get_segmenter("classical")
    assert isinstance(seg, Segmenter)
    assert seg.name == "classical" and seg.version
    with pytest.raises(ReaderAppError, match="unknown segmentation method"):
        get_segmenter("no-such-method")

    class Fake:
        name, version = "fake", "0"

        def propose(self, volume, *, backend="auto", progress=None):
            return SegmentationResult(np.zeros(volume.shape, np.uint8), {"method": "fake"})

    register_segmenter("fake-test", Fake)
    try:
        assert "fake-test" in available_segmenters()
        assert isinstance(get_segmenter("fake-test"), Segmenter)
    finally:
        from readerapp.segmentation import base

        base._REGISTRY.pop("fake-test")


def test_result_contract():
    ph, res = segmented("default")
    assert isinstance(res.labels, np.ndarray) and res.labels.dtype == np.uint8
    assert res.labels.shape == ph.volume.shape
    assert set(np.unique(res.labels)) <= {0, 1, 2, 3}
    prov = res.provenance
    assert prov["method"] == "classical" and prov["backend"] == "numpy"
    assert prov["version"] and prov["readerapp_version"]
    assert prov["parameters"]["vessel_radius_mm"] > 0
    json.dumps(prov)  # goes into the JSON output as it is
    stages = list(res.timings)
    assert stages[:3] == ["transfer", "downsample", "body"] and "refine" in stages
    assert all(t >= 0 for t in res.timings.values()) and res.total_seconds > 0
    for key in ("trachea", "body"):
        m = res.extras[key]
        assert isinstance(m, np.ndarray) and m.dtype == bool and m.shape == ph.volume.shape
    assert res.extras["body"][ph.parts["lungs"]].mean() > 0.99
    assert res.warnings == []


@pytest.mark.parametrize("name", list(VARIANTS))
def test_lung_and_lesions_match_truth(name):
    ph, res = segmented(name)
    lab, truth = res.labels, ph.truth
    assert dice(lab > 0, truth > 0) >= 0.97
    assert dice(lab >= 2, truth >= 2) >= 0.9
    vox = ph.volume.voxel_volume_ml
    for value in (Label.GGO, Label.CONSOLIDATION):
        got, want = (lab == value).sum() * vox, (truth == value).sum() * vox
        assert abs(got - want) <= VOLUME_TOLERANCE * want, (value.name, got, want)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_airway_excluded_and_vessels_not_lesion(name):
    ph, res = segmented(name)
    airway = ph.parts["airway"]
    # trachea and main bronchi: their lumen is not lung, and the extras mask holds it
    assert (res.labels[airway] > 0).mean() < 0.02
    assert dice(res.extras["trachea"], airway) > 0.7
    # vessels are lung but (away from lesions) not lesion
    vessels = ph.parts["vessels"]
    assert (res.labels[vessels] > 0).mean() > 0.95
    assert (res.labels[vessels] >= 2).mean() < 0.1


@pytest.mark.parametrize("name", list(VARIANTS))
def test_consolidation_against_chest_wall_is_kept(name):
    """The failure users complain of most: dense lung at the pleura dropping out."""
    ph, res = segmented(name)
    pleural = ph.parts["pleural_consolidation"]
    assert (res.labels[pleural] > 0).mean() >= 0.9
    assert (res.labels[pleural] == Label.CONSOLIDATION).mean() >= 0.9


def test_large_posterior_consolidation():
    ph, res = segmented("default", dependent_consolidation=True)
    dep = ph.parts["dependent_consolidation"]
    # Known limit: its posterior tip, where it fills the lung's whole width over 50 mm of
    # slices, lies beyond any hull of the aerated lung and beyond the closing along z, and the
    # phantom's chest wall has the same density (measured: 75 % kept).
    assert (res.labels[dep] > 0).mean() >= 0.7
    assert (res.labels[dep] == Label.CONSOLIDATION).mean() >= 0.7
    assert dice(res.labels > 0, ph.truth > 0) >= 0.97
    assert dice(res.labels >= 2, ph.truth >= 2) >= 0.85
    # ... without swallowing the mediastinum or the chest wall
    assert (res.labels[ph.parts["aorta"]] == 0).all()


def test_no_lesion_phantom_has_almost_no_lesion():
    ph, res = segmented("default", lesions=False)
    lung = res.labels > 0
    assert dice(lung, ph.truth > 0) >= 0.97
    assert (res.labels >= 2).sum() * ph.volume.voxel_volume_ml < 1.0  # mL, of about 2400


def test_dependent_density_gradient_is_not_lesion():
    """Supine lungs are denser at the back; -790 HU there is still aerated lung."""
    ph, res = segmented("default", lesions=False, dependent_gradient_hu=60.0)
    assert (res.labels >= 2).sum() * ph.volume.voxel_volume_ml < 2.0
    assert dice(res.labels > 0, ph.truth > 0) >= 0.97


def test_padding_is_never_lung():
    """Cut the field of view through one lung: padding there must stay label 0."""
    ph = make_chest_phantom(seed=5)
    hu = ph.volume.hu.copy()
    hu[:, :, :30] = PADDING_HU  # padding over the lateral third of the low-x lung
    vol = CTVolume(hu=hu, spacing=ph.volume.spacing, direction=ph.volume.direction)
    res = get_segmenter().propose(vol, backend="numpy")
    assert (res.labels[hu < -1500] == 0).all()
    truth = ph.truth.copy()
    truth[:, :, :30] = 0
    high_x = np.zeros_like(truth, bool)
    high_x[:, :, 80:] = True
    assert dice((res.labels > 0) & high_x, (truth > 0) & high_x) >= 0.97
    assert not res.extras["body"][hu < -1500].any()


def test_flipped_slice_order():
    """Slices stored inferior first or superior first give the same labels."""
    ph, res = segmented("coarse_inplane")
    v = ph.volume
    d = list(v.direction)
    d[8] = -d[8]
    flipped = CTVolume(hu=np.ascontiguousarray(v.hu[::-1]), spacing=v.spacing, direction=tuple(d))
    res2 = get_segmenter().propose(flipped, backend="numpy")
    assert dice(res2.labels[::-1] > 0, res.labels > 0) > 0.995
    assert dice(res2.labels[::-1] >= 2, res.labels >= 2) > 0.98


def test_progress_and_cancel():
    ph = make_chest_phantom((40, 96, 96), (3.3, 3.3, 5.0))
    seen: list[float] = []
    get_segmenter().propose(ph.volume, backend="numpy", progress=lambda f, m: seen.append(f))
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0

    def cancel(f: float, m: str) -> None:
        if f > 0.3:
            raise Cancelled

    with pytest.raises(Cancelled):
        get_segmenter().propose(ph.volume, backend="numpy", progress=cancel)


def test_empty_scan_warns_instead_of_failing():
    vol = CTVolume(hu=np.full((10, 64, 64), -1000, np.int16), spacing=(2.0, 2.0, 5.0))
    res = get_segmenter().propose(vol, backend="numpy")
    assert not res.labels.any()
    assert any("trachea" in w for w in res.warnings)
    assert any("lung" in w for w in res.warnings)


@pytest.mark.skipif(cupy_available(), reason="a GPU is present: CuPy is usable")
def test_cupy_backend_refused_clearly_without_gpu():
    ph = make_chest_phantom((20, 64, 64), (5.0, 5.0, 10.0))
    with pytest.raises(BackendUnavailableError, match="cupy"):
        get_segmenter().propose(ph.volume, backend="cupy")


@pytest.mark.gpu
@pytest.mark.skipif(not cupy_available(), reason="CuPy with a CUDA GPU is not available")
@pytest.mark.parametrize("name", ["default", "thick_slices"])
def test_cupy_gives_the_same_labels(name):
    ph, res = segmented(name)
    res_gpu = get_segmenter().propose(ph.volume, backend="cupy")
    assert res_gpu.provenance["backend"] == "cupy"
    assert isinstance(res_gpu.labels, np.ndarray)
    assert (res_gpu.labels != res.labels).mean() < 1e-4
    for key in ("trachea", "body"):
        assert (res_gpu.extras[key] != res.extras[key]).mean() < 1e-4


def test_airway_leak_control_in_emphysematous_lung():
    """Lung at -930 HU: growing the airway at -900 or -925 HU floods the lungs; the threshold
    must come down until the grown tree is airway-sized, and the airway still be excluded."""
    ph = make_chest_phantom(seed=6, lesions=False)
    hu = ph.volume.hu.copy()
    parenchyma = ph.parts["lungs"] & ~ph.parts["vessels"]
    hu[parenchyma] -= 80
    vol = CTVolume(hu=hu, spacing=ph.volume.spacing, direction=ph.volume.direction)
    res = get_segmenter().propose(vol, backend="numpy")
    airway = res.provenance["airway"]
    assert airway["threshold_hu"] <= -950
    assert airway["grown_ml"] < res.provenance["parameters"]["airway_max_ml"]
    assert (res.labels[ph.parts["airway"]] > 0).mean() < 0.02
    assert dice(res.labels > 0, ph.truth > 0) >= 0.97
    assert (res.labels >= 2).sum() * vol.voxel_volume_ml < 1.0


@pytest.mark.slow
def test_full_size_scan():
    """512 x 512 x 300 at 0.7 x 0.7 x 1 mm, the size the speed target is set for. Its speed is
    the benchmark's to measure (``python -m readerapp.bench``), not a timed test's: a busy
    shared machine would make such a test flake. Here: every stage ran, and the answer holds."""
    ph = make_chest_phantom((300, 512, 512), (0.7, 0.7, 1.0), seed=1)
    res = get_segmenter().propose(ph.volume, backend="numpy")
    assert {"body", "airway", "lung", "completion", "lesions", "refine"} <= set(res.timings)
    assert dice(res.labels > 0, ph.truth > 0) >= 0.98
    assert dice(res.labels >= 2, ph.truth >= 2) >= 0.95


def test_airway_leaking_at_every_threshold_keeps_the_lungs():
    """Lung darker than every growing threshold: the method must warn and fall back to the
    trachea alone instead of removing the lungs as "airway"."""
    ph = make_chest_phantom(seed=8, lesions=False, noise_hu=5.0)
    hu = ph.volume.hu.copy()
    hu[ph.parts["lungs"] & ~ph.parts["vessels"]] = -1000
    vol = CTVolume(hu=hu, spacing=ph.volume.spacing, direction=ph.volume.direction)
    res = get_segmenter().propose(vol, backend="numpy")
    assert any("leaked" in w for w in res.warnings)
    assert dice(res.labels > 0, ph.truth > 0) >= 0.95
    trachea_above_lungs = ph.parts["airway"] & ~ph.parts["lungs"].any(axis=(1, 2))[:, None, None]
    assert (res.extras["trachea"][trachea_above_lungs]).mean() > 0.5
