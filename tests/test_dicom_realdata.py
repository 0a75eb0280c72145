"""Real DICOM from ../shared/data: the chest CT, a JPEG 2000 series, Enhanced CT, broken samples.

Expected geometry is read from the headers with pydicom here (not hard-coded beyond sanity
ranges), and the HU arrays are cross-checked against SimpleITK's GDCM reader, an independent
decoder. Every file in the folder, including ones added later, must either load or be refused
with a SeriesError: never another exception.
"""

from __future__ import annotations

import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import JPEGLSLossless, RLELossless

from readerapp.errors import SeriesError
from readerapp.io.dicom import discover_series, load_series
from readerapp.io.dicom_write import encoder_available
from readerapp.volume import CTVolume


def shared_data_dir() -> Path | None:
    """Same rule as the ``shared_data`` fixture (conftest modules are not importable by name:
    several directories have one)."""
    import os

    env = os.environ.get("READERAPP_SHARED_DATA")
    for c in ([Path(env)] if env else []) + [Path(__file__).resolve().parents[2] / "shared" / "data"]:
        if c.is_dir():
            return c
    return None

pytestmark = pytest.mark.realdata

_DATA = shared_data_dir()
_ALL_FILES = sorted(p for p in _DATA.rglob("*") if p.is_file()) if _DATA else []
_NO_DATA = pytest.param(None, marks=pytest.mark.skip(reason="../shared/data is absent"))


def _params(files: list[Path]) -> list:
    if not files:
        return [_NO_DATA]
    return [pytest.param(f, id=str(f.relative_to(_DATA))) for f in files]  # type: ignore[arg-type]


def _header_geometry(folder: Path) -> tuple[tuple[float, float], float, np.ndarray]:
    """(x, y) pixel spacing, median z step and lowest position, read independently with pydicom."""
    heads = [dcmread(f, stop_before_pixels=True) for f in sorted(folder.iterdir())]
    ps = heads[0].PixelSpacing
    z = np.sort([float(h.ImagePositionPatient[2]) for h in heads])
    low = min(heads, key=lambda h: float(h.ImagePositionPatient[2]))
    return (float(ps[1]), float(ps[0])), float(np.median(np.diff(z))), np.array(low.ImagePositionPatient, float)


def _sitk_array(folder: Path) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    img = reader.Execute()
    arr = sitk.GetArrayFromImage(img)
    if img.GetDirection()[8] < 0:
        arr = arr[::-1]
    return arr


@pytest.fixture(scope="module")
def chest(chest_ct_dir: Path) -> CTVolume:
    return load_series([chest_ct_dir])[0]


def test_chest_ct_geometry_matches_headers(chest: CTVolume, chest_ct_dir: Path) -> None:
    (sx, sy), sz, low = _header_geometry(chest_ct_dir)
    assert chest.shape == (64, 512, 512)
    assert chest.spacing == pytest.approx((sx, sy, sz))
    assert 0.8 < sx < 0.9 and 0.8 < sy < 0.9 and 4.9 < sz < 5.1
    assert chest.origin == pytest.approx(tuple(low))
    assert chest.direction == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert chest.warnings == []
    assert chest.meta["manufacturer"] == "Philips" and chest.meta["n_files"] == 64
    # lungs hold air-like voxels; nothing is below the padding value
    assert np.count_nonzero(chest.hu < -900) > 1e6
    assert chest.hu.min() >= -3024


def test_chest_ct_equals_simpleitk(chest: CTVolume, chest_ct_dir: Path) -> None:
    np.testing.assert_array_equal(chest.hu, _sitk_array(chest_ct_dir).astype(np.int16))


def test_chest_ct_shuffled_and_recompressed_copies_are_identical(
    chest: CTVolume, chest_ct_dir: Path, tmp_path: Path
) -> None:
    files = sorted(chest_ct_dir.iterdir())
    names = [f"im{i:03d}" for i in range(len(files))]
    random.Random(5).shuffle(names)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for f, n in zip(files, names, strict=True):
        shutil.copy(f, shuffled / n)
    np.testing.assert_array_equal(load_series([shuffled])[0].hu, chest.hu)

    syntax = JPEGLSLossless if encoder_available(JPEGLSLossless) else RLELossless
    packed = tmp_path / "recompressed"
    packed.mkdir()
    for f, n in zip(files, names, strict=True):
        ds = dcmread(f)
        ds.compress(syntax, encoding_plugin="pydicom" if syntax == RLELossless else "")
        ds.save_as(packed / n)
    vol = load_series([packed])[0]
    assert syntax in vol.meta["transfer_syntax"]
    np.testing.assert_array_equal(vol.hu, chest.hu)
    assert vol.spacing == chest.spacing and vol.origin == chest.origin


def test_jpeg2000_series(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "jpeg2000-abdomen-series"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    vol = load_series([folder])[0]
    (sx, sy), sz, low = _header_geometry(folder)
    assert vol.shape == (20, 512, 512)
    assert vol.spacing == pytest.approx((sx, sy, sz))
    assert vol.origin == pytest.approx(tuple(low))
    assert "JPEG 2000" in vol.meta["transfer_syntax"]
    np.testing.assert_array_equal(vol.hu, _sitk_array(folder).astype(np.int16))
    # These files have no SeriesInstanceUID: the derived identifier is said, and stable.
    assert any("no SeriesInstanceUID" in w for w in vol.warnings)
    assert discover_series([folder])[0].uid == vol.series_uid
    # the same series from a zip archive
    archive = tmp_path / "j2k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"series/{f.name}")
    np.testing.assert_array_equal(load_series([archive])[0].hu, vol.hu)


def test_enhanced_ct_sample(shared_data: Path) -> None:
    f = shared_data / "dicom-samples" / "multiframe" / "eCT_Supplemental.dcm"
    if not f.is_file():
        pytest.skip(f"{f} is absent")
    vol = load_series([f])[0]
    ds = dcmread(f, stop_before_pixels=True)
    pm = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    zs = sorted(float(i.PlanePositionSequence[0].ImagePositionPatient[2]) for i in ds.PerFrameFunctionalGroupsSequence)
    assert vol.shape == (2, 512, 512)
    assert vol.meta["enhanced"] is True
    assert vol.spacing == pytest.approx((float(pm.PixelSpacing[1]), float(pm.PixelSpacing[0]), zs[1] - zs[0]))
    # Rescale comes from the functional groups (intercept -1024): stored 0..4095 -> HU -1024..
    assert vol.hu.min() >= -1024 and vol.hu.max() <= 3071


def test_whole_shared_folder_picks_the_chest_ct(shared_data: Path, chest: CTVolume) -> None:
    infos = discover_series([shared_data])
    assert infos[0].is_axial_ct and infos[0].n_frames == 64
    assert any(not i.is_axial_ct and "not CT" in i.reason for i in infos)
    vol = load_series([shared_data])[0]
    np.testing.assert_array_equal(vol.hu, chest.hu)
    assert any("--series" in w for w in vol.warnings)
    assert any(w.startswith("skipped") for w in vol.warnings)  # README, catalog, files without meta


@pytest.mark.parametrize("path", _params(_ALL_FILES))
def test_every_file_loads_or_is_refused_clearly(path: Path, shared_data: Path) -> None:
    try:
        vols = load_series([path])
    except SeriesError as exc:
        msg = str(exc)
        assert path.name in msg or str(path) in msg or "series" in msg
        assert len(msg) > 40
        return
    assert len(vols) == 1 and vols[0].hu.dtype == np.int16


_BROKEN = [p for p in _ALL_FILES if p.parent.name in ("malformed", "compressed")]


@pytest.mark.parametrize("path", _params(_BROKEN))
def test_malformed_and_non_ct_samples_are_refused(path: Path, shared_data: Path) -> None:
    with pytest.raises(SeriesError) as err:
        load_series([path])
    msg = str(err.value)
    assert str(path) in msg or "series" in msg
    assert any(word in msg for word in ("not CT", "no DICOM", "cannot decode", "damaged", "no pixel data"))


_SINGLE_CT = [p for p in _ALL_FILES if p.parent.name == "ct"]


@pytest.mark.parametrize("path", _params(_SINGLE_CT))
def test_single_ct_slices_load_as_one_slice_or_are_refused(path: Path, shared_data: Path) -> None:
    """Decision: a single CT slice loads as a 1-slice volume (warning) if its thickness is known."""
    ds = dcmread(path, stop_before_pixels=True)
    try:
        vol = load_series([path])[0]
    except SeriesError as exc:
        assert "single slice" in str(exc)
        assert not ds.get("SpacingBetweenSlices") and not ds.get("SliceThickness")
        return
    assert vol.shape == (1, int(ds.Rows), int(ds.Columns))
    assert any("single-slice" in w for w in vol.warnings)
    assert vol.spacing[2] > 0
