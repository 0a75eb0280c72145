"""The CuPy code paths run on the CPU: a NumPy-backed stand-in shaped like CuPy.

CI has no GPU, so ``backend="cupy"`` is otherwise never run there. Here ``cupy`` is replaced by
a stand-in whose arrays are NumPy arrays marked as "device" arrays (``.get()`` copies to the
host, as ``cupy.ndarray.get`` does), whose ``cuda.Device().synchronize()`` is a no-op, and whose
``cupyx.scipy.ndimage`` offers *only* the functions the real one has (its ``dir`` when cupyx
imports, as it does here without a GPU; else a fixed list). Like CuPy, the stand-in refuses to
mix host and device arrays in one operation and its ndimage refuses host input. So a call of a
function that the GPU lacks, a host array slipping into device code, or an error in a
cupy-only branch fails here; the labels must equal the NumPy backend's exactly.
"""

from __future__ import annotations

import types
from functools import cache
from typing import Any

import numpy as np
import pytest
import scipy.ndimage as sndi

from readerapp import backend as backend_mod
from readerapp.phantom import make_chest_phantom
from readerapp.segmentation import classical, get_segmenter

#: cupyx.scipy.ndimage's public names (CuPy 13), used where cupyx cannot be imported.
CUPYX_NDIMAGE_FALLBACK = [
    "affine_transform", "binary_closing", "binary_dilation", "binary_erosion",
    "binary_fill_holes", "binary_hit_or_miss", "binary_opening", "binary_propagation",
    "black_tophat", "center_of_mass", "convolve", "convolve1d", "correlate", "correlate1d",
    "distance_transform_edt", "extrema", "find_objects", "fourier_ellipsoid",
    "fourier_gaussian", "fourier_shift", "fourier_uniform", "gaussian_filter",
    "gaussian_filter1d", "gaussian_gradient_magnitude", "gaussian_laplace",
    "generate_binary_structure", "generic_filter", "generic_filter1d",
    "generic_gradient_magnitude", "generic_laplace", "grey_closing", "grey_dilation",
    "grey_erosion", "grey_opening", "histogram", "iterate_structure", "label",
    "labeled_comprehension", "laplace", "map_coordinates", "maximum", "maximum_filter",
    "maximum_filter1d", "maximum_position", "mean", "median", "median_filter", "minimum",
    "minimum_filter", "minimum_filter1d", "minimum_position", "morphological_gradient",
    "morphological_laplace", "percentile_filter", "prewitt", "rank_filter", "rotate", "shift",
    "sobel", "spline_filter", "spline_filter1d", "standard_deviation", "sum", "sum_labels",
    "uniform_filter", "uniform_filter1d", "value_indices", "variance", "white_tophat", "zoom",
]


def cupyx_ndimage_names() -> list[str]:
    try:
        import cupyx.scipy.ndimage as cndi
    except Exception:  # no CuPy, or a broken CUDA install
        return CUPYX_NDIMAGE_FALLBACK
    names = [n for n in dir(cndi) if not n.startswith("_") and callable(getattr(cndi, n))]
    return names or CUPYX_NDIMAGE_FALLBACK


class DeviceArray(np.ndarray):
    """A NumPy array standing for a CuPy array (its type's module name starts with "cupy")."""

    strict = True  # refuse operations mixing host and device arrays, as CuPy does

    def get(self) -> np.ndarray:
        return np.array(self.view(np.ndarray), copy=True)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):  # type: ignore[no-untyped-def]
        if DeviceArray.strict:
            for a in inputs + tuple(kwargs.get("out", ())):
                if isinstance(a, np.ndarray) and not isinstance(a, DeviceArray) and a.ndim > 0:
                    raise TypeError(f"host array mixed with device arrays in {ufunc.__name__}")
        inputs = tuple(_host_view(a) for a in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(_host_view(a) for a in kwargs["out"])
        return _wrap(getattr(ufunc, method)(*inputs, **kwargs))


DeviceArray.__module__ = "cupy._standin"


def _host_view(a: Any) -> Any:
    return a.view(np.ndarray) if isinstance(a, DeviceArray) else a


def _wrap(r: Any) -> Any:
    if isinstance(r, np.ndarray) and not isinstance(r, DeviceArray):
        return r.view(DeviceArray)
    if isinstance(r, tuple):
        return tuple(_wrap(x) for x in r)
    if isinstance(r, list):
        return [_wrap(x) for x in r]
    return r


def _unwrap(a: Any) -> Any:
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap(x) for x in a)
    return _host_view(a)


class _Device:
    def synchronize(self) -> None:
        pass


def make_fake_cupy() -> types.ModuleType:
    """A module shaped like ``cupy``: NumPy's functions returning device arrays."""
    mod = types.ModuleType("cupy")

    def lookup(name: str) -> Any:
        obj = getattr(np, name)
        if callable(obj) and not isinstance(obj, type):
            def call(*args: Any, **kwargs: Any) -> Any:
                return _wrap(obj(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))
            return call
        return obj

    mod.__getattr__ = lookup  # type: ignore[attr-defined]
    mod.ndarray = DeviceArray  # type: ignore[attr-defined]
    mod.cuda = types.SimpleNamespace(Device=_Device)  # type: ignore[attr-defined]
    mod.asnumpy = lambda a: np.asarray(_host_view(a)).copy()  # type: ignore[attr-defined]
    return mod


def make_fake_ndimage() -> types.ModuleType:
    """``cupyx.scipy.ndimage`` as a module offering only the real one's functions."""
    mod = types.ModuleType("cupyx.scipy.ndimage")
    for name in cupyx_ndimage_names():
        if not hasattr(sndi, name):
            continue
        fn = getattr(sndi, name)

        def call(*args: Any, _fn: Any = fn, _name: str = name, **kwargs: Any) -> Any:
            if args and isinstance(args[0], np.ndarray) and not isinstance(args[0], DeviceArray):
                raise TypeError(f"cupyx.scipy.ndimage.{_name} got a host (NumPy) array")
            return _wrap(_fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

        setattr(mod, name, call)
    return mod


@pytest.fixture
def fake_cupy(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    xp, ndi = make_fake_cupy(), make_fake_ndimage()

    def resolve(name: str = "auto") -> str:
        return "cupy" if name == "cupy" else backend_mod.resolve_backend(name)

    def array_module(name: str) -> Any:
        return xp if name == "cupy" else np

    def ndimage_module(name: str) -> Any:
        return ndi if name == "cupy" else sndi

    for mod in (backend_mod, classical):
        monkeypatch.setattr(mod, "array_module", array_module)
        monkeypatch.setattr(mod, "ndimage_module", ndimage_module)
    monkeypatch.setattr(classical, "resolve_backend", resolve)
    monkeypatch.setattr(DeviceArray, "strict", True)
    return xp


def test_standin_refuses_what_cupy_refuses(fake_cupy):
    xp = fake_cupy
    ndi = classical.ndimage_module("cupy")
    a = xp.zeros((2, 3, 3), dtype=bool)
    assert backend_mod.to_numpy(a).__class__ is np.ndarray  # .get() is used, as for CuPy
    with pytest.raises(TypeError, match="host"):
        ndi.label(np.zeros((3, 3), bool))
    with pytest.raises(TypeError, match="host array mixed"):
        _ = a | np.ones((2, 3, 3), bool)
    assert not hasattr(ndi, "binary_fill_holes_2d") and hasattr(ndi, "label")
    missing = [n for n in ("distance_transform_cdt", "watershed_ift") if hasattr(ndi, n)]
    assert missing == [], "the stand-in must not offer what cupyx.scipy.ndimage lacks"


@cache
def numpy_result(kind: str):  # type: ignore[no-untyped-def]
    ph = _phantom(kind)
    return ph, get_segmenter().propose(ph.volume, backend="numpy")


def _phantom(kind: str):  # type: ignore[no-untyped-def]
    if kind == "thick_dependent":
        return make_chest_phantom((40, 200, 200), (1.6, 1.6, 5.0), seed=1,
                                  dependent_consolidation=True, liver_dome=True)
    if kind == "fov_cut":  # lungs cut by the image edge and the padding: the _body paths
        return make_chest_phantom((40, 128, 128), (2.5, 2.5, 6.0), seed=3, fov_crop_mm=95.0)
    return make_chest_phantom((48, 96, 96), (3.3, 3.3, 4.0), seed=3)


@pytest.mark.parametrize("kind", ["small", "thick_dependent", "fov_cut"])
def test_cupy_path_gives_the_numpy_labels(fake_cupy, kind):
    ph, ref = numpy_result(kind)
    res = get_segmenter().propose(ph.volume, backend="cupy")
    assert res.provenance["backend"] == "cupy"
    assert type(res.labels) is np.ndarray and res.labels.dtype == np.uint8
    np.testing.assert_array_equal(res.labels, ref.labels)
    for key, mask in ref.extras.items():
        assert type(res.extras[key]) is np.ndarray
        np.testing.assert_array_equal(res.extras[key], mask)
    assert res.warnings == ref.warnings
    assert (res.labels >= 2).any()  # the lesion stages ran on something


def test_density_accumulator_xp_path(fake_cupy, monkeypatch):
    """The accumulator's update runs on the array module; its from-scratch table is a RawKernel
    (GPU only), replaced here by the NumPy table."""
    from readerapp import densitometry
    from readerapp.densitometry import _cupy, accumulator
    from readerapp.densitometry.accumulator import DensityAccumulator, table_from_scratch

    monkeypatch.setattr(accumulator, "array_module", backend_mod.array_module)
    monkeypatch.setattr(accumulator, "resolve_backend",
                        lambda name="auto": "cupy" if name == "cupy" else "numpy")
    monkeypatch.setattr(densitometry, "resolve_backend",
                        lambda name="auto": "cupy" if name == "cupy" else "numpy")
    monkeypatch.setattr(_cupy, "table_cupy", lambda hu, labels: densitometry.compute_table(
        backend_mod.to_numpy(hu), backend_mod.to_numpy(labels), backend="numpy"))
    # the accumulator folds device results into host tables through its own _host(), which
    # tells CuPy arrays by type; the stand-in is an ndarray, so mixing is allowed here
    monkeypatch.setattr(DeviceArray, "strict", False)
    rng = np.random.default_rng(0)
    hu = rng.integers(-1024, 200, size=(6, 40, 40)).astype(np.int16)
    labels = rng.integers(0, 4, size=hu.shape).astype(np.uint8)
    acc = DensityAccumulator(hu, labels, backend="cupy", voxel_volume_ml=0.5)
    assert acc.backend == "cupy"
    for _ in range(20):
        idx = rng.choice(labels.size, size=200, replace=False)
        new = rng.integers(0, 4, size=idx.size).astype(np.uint8)
        old = labels.ravel()[idx].copy()
        labels.ravel()[idx] = new
        acc.apply(idx, old, new)
    ref = table_from_scratch(hu, labels)
    np.testing.assert_array_equal(acc.table.counts, ref.counts)
    np.testing.assert_array_equal(acc.table.hu_sums, ref.hu_sums)
    np.testing.assert_array_equal(acc.table.fine, ref.fine)


def test_lung_mask_pruning_and_round_airway_wall_xp_path():
    """The pruning (``_prune``: ringed dome caps swept slice by slice, thin lines, single-slice
    pieces, islands) and the ball-shaped airway wall on the CuPy-shaped path: same masks."""
    from readerapp.segmentation._airway import airway_exclusion
    from readerapp.segmentation._grid import Grid
    from readerapp.segmentation._prune import prune_additions

    xp, ndi = make_fake_cupy(), make_fake_ndimage()
    nz = 12
    yy, xx = np.mgrid[:60, :100]
    aerated = np.zeros((nz, 60, 100), bool)
    added = np.zeros_like(aerated)
    for z in range(nz):
        ring = (yy - 30) ** 2 + (xx - 25) ** 2 <= 20 ** 2
        if z >= 4:
            aerated[z] |= ring
        if 4 <= z < 8:
            added[z] |= (yy - 30) ** 2 + (xx - 25) ** 2 <= (12 - z) ** 2 * 2  # a dome's cap
        aerated[z] |= (yy - 30) ** 2 + (xx - 75) ** 2 <= 20 ** 2
        if 3 <= z < 8:
            added[z] |= (yy - 30) ** 2 + (xx - 75) ** 2 <= 8 ** 2  # a lesion inside lung
    added[:, 30, 96:99] = True  # a thin line beside the right lung
    added[5, 2:8, 40:50] = True  # a single-slice island
    aerated &= ~added
    mask = aerated | added
    grid = Grid((1, 1, 1), mask.shape, (1.25, 1.5, 1.5))
    want = prune_additions(np, sndi, mask, aerated, grid, True)
    got = prune_additions(xp, ndi, xp.asarray(mask), xp.asarray(aerated), grid, True)
    assert isinstance(got, DeviceArray)
    assert np.array_equal(np.asarray(got.get()), want)
    assert want.sum() < mask.sum()  # something was pruned
    lumen = np.zeros_like(mask)
    lumen[3:9, 28:33, 20:30] = True
    want_w = airway_exclusion(np, sndi, lumen, grid, 2.5)
    got_w = airway_exclusion(xp, ndi, xp.asarray(lumen), grid, 2.5)
    assert np.array_equal(np.asarray(got_w.get()), want_w)
