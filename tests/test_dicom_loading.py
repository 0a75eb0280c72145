"""Loading DICOM series: phantoms written out and read back must give exactly the same volume.

Known answers come from the phantom itself: its HU array, spacing, origin and direction. Every
transfer syntax an encoder is installed for, shuffled file names, Enhanced CT, zip archives and
per-slice rescale values must all reproduce it bit for bit.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from readerapp.errors import SeriesError
from readerapp.io.dicom import discover_series, load_series
from readerapp.io.dicom_write import FAKE_IDENTITY, encoder_available, write_synthetic_series
from readerapp.phantom import make_chest_phantom
from readerapp.progress import Cancelled
from readerapp.volume import PADDING_HU, CTVolume

SHAPE = (12, 64, 64)
SPACING = (1.5, 1.5, 2.5)


@pytest.fixture(scope="module")
def phantom_volume() -> CTVolume:
    return make_chest_phantom(SHAPE, spacing=SPACING, seed=3).volume


@pytest.fixture(scope="module")
def written(phantom_volume: CTVolume, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plain")
    write_synthetic_series(phantom_volume, folder, series_uid="1.2.826.0.1.3680043.8.498.100")
    return folder


def assert_same_volume(got: CTVolume, want: CTVolume) -> None:
    assert got.hu.dtype == np.int16
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.hu, want.hu)
    np.testing.assert_allclose(got.spacing, want.spacing, atol=1e-6)
    np.testing.assert_allclose(got.origin, want.origin, atol=1e-5)
    np.testing.assert_allclose(got.direction, want.direction, atol=1e-6)


def test_round_trip_is_exact(written: Path, phantom_volume: CTVolume) -> None:
    vols = load_series([written])
    assert len(vols) == 1
    vol = vols[0]
    assert_same_volume(vol, phantom_volume)
    assert vol.series_uid == "1.2.826.0.1.3680043.8.498.100"
    assert vol.warnings == []
    # The phantom's padding outside the field of view is counted and stays padding.
    assert vol.meta["padding_voxels"] == int(np.count_nonzero(phantom_volume.hu == PADDING_HU)) > 0


def test_meta_is_non_identifying(written: Path) -> None:
    vol = load_series([written])[0]
    assert vol.meta["modality"] == "CT"
    assert vol.meta["manufacturer"] == "ReaderApp"
    assert vol.meta["kernel"] == "STANDARD"
    assert vol.meta["kvp"] == 120.0
    assert vol.meta["slice_thickness_mm"] == SPACING[2]
    assert vol.meta["n_files"] == SHAPE[0]
    assert "Explicit VR Little Endian" in vol.meta["transfer_syntax"]
    text = repr(vol.meta) + repr(vol.warnings)
    for value in FAKE_IDENTITY.values():
        assert value not in text
    for key in ("PatientName", "PatientID", "StudyDate", "InstitutionName", "patient", "date"):
        assert not any(key.lower() in k.lower() for k in vol.meta)


def test_order_comes_from_positions_not_names_or_instance_numbers(
    phantom_volume: CTVolume, tmp_path: Path
) -> None:
    # shuffled names; the writer also numbers instances against the geometry
    write_synthetic_series(phantom_volume, tmp_path, shuffle_names=True, seed=7)
    names = sorted(p.name for p in tmp_path.iterdir())
    first = dcmread(tmp_path / names[0], stop_before_pixels=True)
    assert float(first.ImagePositionPatient[2]) != pytest.approx(phantom_volume.origin[2])
    assert_same_volume(load_series([tmp_path])[0], phantom_volume)


@pytest.mark.parametrize(
    "syntax",
    [ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless],
    ids=lambda s: s.name,
)
def test_transfer_syntaxes_give_identical_numbers(
    syntax: str, phantom_volume: CTVolume, tmp_path: Path
) -> None:
    if not encoder_available(syntax):
        pytest.skip(f"no pydicom encoder for {syntax} here")
    write_synthetic_series(phantom_volume, tmp_path, syntax, shuffle_names=True)
    ts = dcmread(next(tmp_path.iterdir()), stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert ts == syntax
    vol = load_series([tmp_path])[0]
    assert_same_volume(vol, phantom_volume)
    assert syntax in vol.meta["transfer_syntax"]
    assert not any("lossy" in w for w in vol.warnings)


def test_enhanced_multiframe_ct(phantom_volume: CTVolume, tmp_path: Path) -> None:
    files = write_synthetic_series(phantom_volume, tmp_path, enhanced=True)
    assert len(files) == 1
    vol = load_series(files)[0]
    assert_same_volume(vol, phantom_volume)
    assert vol.meta["enhanced"] is True
    assert vol.meta["n_frames_read"] == SHAPE[0]


def test_enhanced_multiframe_compressed(phantom_volume: CTVolume, tmp_path: Path) -> None:
    if not encoder_available(JPEGLSLossless):
        pytest.skip("no JPEG-LS encoder here")
    write_synthetic_series(phantom_volume, tmp_path, JPEGLSLossless, enhanced=True)
    assert_same_volume(load_series([tmp_path])[0], phantom_volume)


def test_rescale_is_applied_per_slice(phantom_volume: CTVolume, tmp_path: Path) -> None:
    def vary_intercept(k: int, ds) -> None:  # stored values and intercept shift together
        stored = np.frombuffer(ds.PixelData, dtype=np.int16) - 100 * k
        ds.PixelData = stored.astype(np.int16).tobytes()
        ds.RescaleIntercept = float(ds.RescaleIntercept) + 100 * k

    write_synthetic_series(phantom_volume, tmp_path, edit=vary_intercept)
    assert_same_volume(load_series([tmp_path])[0], phantom_volume)


def test_non_unit_slope(phantom_volume: CTVolume, tmp_path: Path) -> None:
    write_synthetic_series(phantom_volume, tmp_path, rescale_slope=0.5, rescale_intercept=-1024)
    assert_same_volume(load_series([tmp_path])[0], phantom_volume)


def test_pixel_padding_value_never_looks_like_air(phantom_volume: CTVolume, tmp_path: Path) -> None:
    # Unsigned storage with intercept -1100: stored 0 would read as -1100 HU (air) without
    # PixelPaddingValue; with it, those voxels must become padding.
    write_synthetic_series(phantom_volume, tmp_path, signed=False, padding_value=0, rescale_intercept=-1100)
    vol = load_series([tmp_path])[0]
    assert_same_volume(vol, phantom_volume)
    pad = phantom_volume.hu == PADDING_HU
    assert np.all(vol.hu[pad] == PADDING_HU)
    assert vol.meta["padding_voxels"] == int(pad.sum())


def test_pixel_padding_range_limit(phantom_volume: CTVolume, tmp_path: Path) -> None:
    def add_range(k: int, ds) -> None:
        stored = np.frombuffer(ds.PixelData, dtype=np.uint16).reshape(64, 64).copy()
        stored[:2, :] = 3  # within [0, 5]: padding too
        ds.PixelData = stored.tobytes()
        ds.add_new(0x00280121, "US", 5)

    write_synthetic_series(phantom_volume, tmp_path, signed=False, padding_value=0, rescale_intercept=-1100,
                           edit=add_range)
    vol = load_series([tmp_path])[0]
    want = phantom_volume.hu.copy()
    want[:, :2, :] = PADDING_HU
    np.testing.assert_array_equal(vol.hu, want)


@pytest.mark.parametrize("pad_hu", [-2048, -3024, -2000])
def test_padding_below_threshold_becomes_padding(pad_hu: int, tmp_path: Path) -> None:
    hu = np.full((3, 16, 16), -1000, np.int16)  # air
    hu[:, :, :4] = pad_hu
    hu[:, 8, 8] = 40
    write_synthetic_series(CTVolume(hu=hu, spacing=(1, 1, 2)), tmp_path)
    vol = load_series([tmp_path])[0]
    assert np.all(vol.hu[:, :, :4] == PADDING_HU)
    assert np.all(vol.hu[:, :, 4:][vol.hu[:, :, 4:] != 40] == -1000)
    assert vol.meta["padding_voxels"] == 3 * 16 * 4


def test_hu_beyond_int16_is_clipped(tmp_path: Path) -> None:
    hu = np.zeros((2, 8, 8), np.int16)
    write_synthetic_series(CTVolume(hu=hu, spacing=(1, 1, 1)), tmp_path, rescale_slope=2.0,
                           rescale_intercept=0.0, edit=lambda k, ds: setattr(
                               ds, "PixelData", np.full(64, 20000, np.int16).tobytes()))
    vol = load_series([tmp_path])[0]
    assert np.all(vol.hu == 32767)


def test_zip_input(written: Path, phantom_volume: CTVolume, tmp_path: Path) -> None:
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(written.iterdir()):
            zf.write(f, f"nested/dir/{f.name}")
        zf.writestr("nested/readme.txt", "not dicom")
    before = set(tmp_path.iterdir())
    vol = load_series([archive])[0]
    assert_same_volume(vol, phantom_volume)
    assert any("skipped 1 file" in w for w in vol.warnings)
    assert set(tmp_path.iterdir()) == before  # nothing extracted beside the archive
    infos = discover_series([archive])
    assert [i.n_files for i in infos] == [SHAPE[0]]


def test_zip_inside_folder_and_file_list(written: Path, phantom_volume: CTVolume, tmp_path: Path) -> None:
    files = sorted(written.iterdir())
    # a list of files works as well as the folder
    assert_same_volume(load_series(files)[0], phantom_volume)
    sub = tmp_path / "outer"
    sub.mkdir()
    with zipfile.ZipFile(sub / "a.zip", "w") as zf:
        for f in files:
            zf.write(f, f.name)
    assert_same_volume(load_series([tmp_path])[0], phantom_volume)


def test_discover_series_reports_each_series(written: Path, tmp_path: Path) -> None:
    small = CTVolume(hu=np.zeros((3, 16, 16), np.int16), spacing=(1, 1, 1))
    shutil.copytree(written, tmp_path / "a")
    write_synthetic_series(small, tmp_path / "b", series_uid="1.2.3.4.5.1")
    write_synthetic_series(small, tmp_path / "c", modality="MR", series_uid="1.2.3.4.5.2")
    (tmp_path / "notes.txt").write_text("hello")
    infos = discover_series([tmp_path])
    assert [(i.uid, i.is_axial_ct) for i in infos] == [
        ("1.2.826.0.1.3680043.8.498.100", True),
        ("1.2.3.4.5.1", True),
        ("1.2.3.4.5.2", False),
    ]
    assert infos[0].n_files == SHAPE[0] and infos[0].n_frames == SHAPE[0]
    assert infos[0].modality == "CT"
    assert "64x64" in infos[0].description
    assert "MR" in infos[2].reason
    for i in infos:
        assert "Phantom" not in i.description


def test_largest_axial_series_is_chosen_and_uids_select(
    written: Path, phantom_volume: CTVolume, tmp_path: Path
) -> None:
    small = CTVolume(hu=np.zeros((3, 16, 16), np.int16), spacing=(1, 1, 1))
    write_synthetic_series(small, tmp_path / "small", series_uid="1.2.3.4.5.9")
    vols = load_series([written, tmp_path / "small"])
    assert len(vols) == 1
    assert_same_volume(vols[0], phantom_volume)
    assert any("1.2.3.4.5.9" in w and "--series" in w for w in vols[0].warnings)

    both = load_series([written, tmp_path / "small"], series_uids=["1.2.3.4.5.9", "1.2.826.0.1.3680043.8.498.100"])
    assert [v.shape for v in both] == [(3, 16, 16), SHAPE]
    assert both[0].warnings == []

    with pytest.raises(SeriesError) as err:
        load_series([written], series_uids=["9.9.9"])
    msg = str(err.value)
    assert "9.9.9" in msg and "not found" in msg and "1.2.826.0.1.3680043.8.498.100" in msg


def test_progress_reports_and_cancel(written: Path) -> None:
    seen: list[float] = []
    load_series([written], progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == pytest.approx(1.0)
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert all(b >= a - 1e-9 for a, b in zip(seen, seen[1:], strict=False))

    def cancel(fraction: float, message: str) -> None:
        if fraction > 0.3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        load_series([written], progress=cancel)


def test_oblique_plane_geometry_is_kept(tmp_path: Path) -> None:
    # A plane tilted 10 degrees about x, slices stacked along its normal: a rotated grid.
    a = np.radians(10.0)
    row, col = np.array([1.0, 0, 0]), np.array([0, np.cos(a), -np.sin(a)])
    n = np.cross(row, col)
    direction = tuple(np.column_stack([row, col, n]).reshape(-1))
    hu = np.random.default_rng(0).integers(-1000, 1000, (5, 16, 16)).astype(np.int16)
    vol = CTVolume(hu=hu, spacing=(1.0, 1.0, 2.0), origin=(5.0, -3.0, 10.0), direction=direction)
    write_synthetic_series(vol, tmp_path, shuffle_names=True)
    got = load_series([tmp_path])[0]
    assert_same_volume(got, vol)
    assert any("tilted 10.0 degrees" in w for w in got.warnings)


def test_signed_padding_value_in_implicit_vr(tmp_path: Path) -> None:
    # Implicit VR stores PixelPaddingValue without its VR (US or SS): -2000 must still match.
    hu = np.full((3, 16, 16), -1000, np.int16)
    hu[:, :, :3] = PADDING_HU
    write_synthetic_series(CTVolume(hu=hu, spacing=(1, 1, 2)), tmp_path, ImplicitVRLittleEndian,
                           rescale_intercept=0, padding_value=-1200)
    vol = load_series([tmp_path])[0]
    np.testing.assert_array_equal(vol.hu, hu)
    assert vol.meta["padding_voxels"] == 3 * 16 * 3


def test_in_plane_spacing_and_size_keep_their_axes(tmp_path: Path) -> None:
    # x and y differ in spacing and size, so a swap anywhere between DICOM and the arrays shows.
    import pydicom

    hu = np.random.default_rng(2).integers(-1000, 1000, (3, 10, 14)).astype(np.int16)
    vol = CTVolume(hu=hu, spacing=(0.6, 0.9, 2.0), origin=(1.0, 2.0, 3.0))
    write_synthetic_series(vol, tmp_path)
    ds = pydicom.dcmread(sorted(tmp_path.rglob("*.dcm"))[0])
    assert (ds.Rows, ds.Columns) == (10, 14)
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.9, 0.6])  # row (y), column (x)
    got = load_series([tmp_path])[0]
    assert_same_volume(got, vol)
    assert got.spacing == pytest.approx((0.6, 0.9, 2.0))
