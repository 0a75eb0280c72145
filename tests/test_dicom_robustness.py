"""Broken series, made on purpose: each is refused with a clear message or corrected with a warning.

Messages must name the series or file and the problem; corrections must give a known answer
(z-ramps and y-ramps whose interpolated values are known exactly).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import JPEGLSLossless, RLELossless, generate_uid

from readerapp.errors import SeriesError
from readerapp.io.dicom import load_series
from readerapp.io.dicom_write import encoder_available, write_synthetic_series
from readerapp.volume import PADDING_HU, CTVolume

UID = "1.2.826.0.1.3680043.8.498.777"
NZ, NY, NX = 10, 16, 16
DZ = 2.5


def ramp_z() -> CTVolume:
    """HU = 10 * z (mm): linear interpolation along z reproduces it exactly."""
    z = np.arange(NZ) * DZ
    hu = np.broadcast_to((10 * z - 500).astype(np.int16)[:, None, None], (NZ, NY, NX)).copy()
    return CTVolume(hu=hu, spacing=(1.0, 1.0, DZ))


def load_error(*args, **kwargs) -> str:
    with pytest.raises(SeriesError) as err:
        load_series(*args, **kwargs)
    return str(err.value)


def files_by_position(folder: Path) -> list[Path]:
    files = list(folder.glob("*.dcm"))
    return sorted(files, key=lambda f: float(dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))


# --------------------------------------------------------------------------- missing slices


def test_missing_slice_is_refused_naming_neighbours(tmp_path: Path) -> None:
    keep = [k for k in range(NZ) if k != 4]
    write_synthetic_series(ramp_z(), tmp_path, series_uid=UID, slices=keep)
    msg = load_error([tmp_path])
    assert UID in msg
    assert "missing slices" in msg and "gap" in msg
    assert "slice_0003.dcm" in msg and "slice_0004.dcm" in msg  # the files on each side of the gap
    assert "5.00 mm" in msg and "2.50 mm" in msg


def test_missing_slice_can_be_filled_on_request(tmp_path: Path) -> None:
    keep = [k for k in range(NZ) if k != 4]
    vol = ramp_z()
    write_synthetic_series(vol, tmp_path, slices=keep)
    got = load_series([tmp_path], fill_gaps=True)[0]
    assert got.shape == vol.shape
    np.testing.assert_array_equal(got.hu, vol.hu)  # linear data: interpolation is exact
    assert got.spacing[2] == pytest.approx(DZ)
    assert any("filled by linear interpolation" in w for w in got.warnings)


# --------------------------------------------------------------------------- duplicates


def test_identical_duplicates_are_dropped(tmp_path: Path) -> None:
    vol = ramp_z()
    write_synthetic_series(vol, tmp_path)
    shutil.copy(tmp_path / "slice_0005.dcm", tmp_path / "copy_of_5.dcm")
    shutil.copy(tmp_path / "slice_0002.dcm", tmp_path / "copy_of_2.dcm")
    got = load_series([tmp_path])[0]
    np.testing.assert_array_equal(got.hu, vol.hu)
    assert any("dropped 2 duplicated slice(s)" in w for w in got.warnings)


def test_different_images_at_one_position_are_refused(tmp_path: Path) -> None:
    write_synthetic_series(ramp_z(), tmp_path, series_uid=UID)
    ds = dcmread(tmp_path / "slice_0005.dcm")
    ds.PixelData = (np.frombuffer(ds.PixelData, np.int16) + 7).astype(np.int16).tobytes()
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(tmp_path / "other_recon.dcm")
    msg = load_error([tmp_path])
    assert UID in msg and "same position" in msg
    assert "slice_0005.dcm" in msg and "other_recon.dcm" in msg


# --------------------------------------------------------------------------- spacing


def _positions_edit(zs: list[float]):
    def edit(k: int, ds) -> None:
        ds.ImagePositionPatient = [0.0, 0.0, zs[k]]

    return edit


def test_uneven_spacing_is_resampled_with_warning(tmp_path: Path) -> None:
    # spacing 2.5 mm for the first half, 2.0 mm after: positions known, data = 10 * z - 500
    zs = [0.0, 2.5, 5.0, 7.5, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0]
    hu = np.broadcast_to(np.array([10 * z - 500 for z in zs], np.int16)[:, None, None], (NZ, NY, NX)).copy()
    write_synthetic_series(CTVolume(hu=hu, spacing=(1, 1, DZ)), tmp_path, edit=_positions_edit(zs))
    got = load_series([tmp_path])[0]
    assert any("uneven slice spacing" in w and "resampled" in w for w in got.warnings)
    n = got.shape[0]
    assert got.spacing[2] == pytest.approx(20.0 / (n - 1))
    targets = np.arange(n) * got.spacing[2]
    want = np.rint(10 * targets - 500)
    np.testing.assert_allclose(got.hu[:, 3, 3], want, atol=1)
    assert got.origin[2] == pytest.approx(0.0)


def test_small_jitter_is_accepted(tmp_path: Path) -> None:
    # positions rounded or jittered by 0.02 mm: neighbour spacings vary by 1.6 %, but every slice
    # lies within 1 % of a spacing of an even grid, so nothing is resampled
    zs = [k * DZ + (0.01 if k % 2 else -0.01) for k in range(NZ)]
    write_synthetic_series(ramp_z(), tmp_path, edit=_positions_edit(zs))
    got = load_series([tmp_path])[0]
    assert got.warnings == []
    assert got.shape[0] == NZ
    assert got.spacing[2] == pytest.approx(DZ, abs=0.03)


# --------------------------------------------------------------------------- tilt and orientation


def test_gantry_tilt_is_corrected_with_warning(tmp_path: Path) -> None:
    # Each slice steps 0.5 mm in y per 2.5 mm in z (11.3 deg tilt); data HU = 4 * y_patient.
    ny = 32
    step = 0.5
    hu = np.empty((NZ, ny, NX), np.int16)
    for k in range(NZ):
        y = k * step + np.arange(ny) * 1.0
        hu[k] = (4 * y)[:, None].astype(np.int16)

    def tilt(k: int, ds) -> None:
        ds.ImagePositionPatient = [0.0, k * step, k * DZ]

    write_synthetic_series(CTVolume(hu=hu, spacing=(1, 1, DZ)), tmp_path, edit=tilt)
    got = load_series([tmp_path])[0]
    assert any("gantry tilt of about 11.3 degrees" in w for w in got.warnings)
    # On the corrected grid every slice shows the same y-ramp as slice 0 (away from the edge,
    # which has become padding where the shifted slices do not reach).
    inner = got.hu[:, 6:, :]
    np.testing.assert_allclose(inner, np.broadcast_to(hu[0, 6:], inner.shape), atol=1)
    assert np.all(got.hu[-1, :4, :] == PADDING_HU)  # slice 9 starts 4.5 mm further along y
    assert got.direction == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))


def test_steep_tilt_is_refused(tmp_path: Path) -> None:
    def tilt(k: int, ds) -> None:
        ds.ImagePositionPatient = [0.0, k * 2.0, k * DZ]  # 38.7 degrees

    write_synthetic_series(ramp_z(), tmp_path, series_uid=UID, edit=tilt)
    msg = load_error([tmp_path])
    assert UID in msg and "gantry tilt of 38.7 degrees" in msg


def test_non_axial_series_is_refused(tmp_path: Path) -> None:
    coronal = (1.0, 0, 0, 0, 0, -1.0, 0, 1.0, 0)  # columns: row dir, column dir, normal
    vol = CTVolume(hu=np.zeros((4, 8, 8), np.int16), spacing=(1, 1, 2), direction=coronal)
    write_synthetic_series(vol, tmp_path, series_uid=UID)
    msg = load_error([tmp_path])
    assert UID in msg and "not axial" in msg and "coronal" in msg
    msg = load_error([tmp_path], series_uids=[UID])
    assert UID in msg and "not axial" in msg and "coronal" in msg


def test_orientation_changing_between_slices_is_refused(tmp_path: Path) -> None:
    def twist(k: int, ds) -> None:
        if k == 3:
            ds.ImageOrientationPatient = [1, 0, 0, 0, 0.996, -0.0872]

    write_synthetic_series(ramp_z(), tmp_path, series_uid=UID, edit=twist)
    msg = load_error([tmp_path])
    assert UID in msg and "orientation differs between slices" in msg and "slice_0003.dcm" in msg


# --------------------------------------------------------------------------- matrix sizes


def test_mixed_matrix_sizes_are_refused(tmp_path: Path) -> None:
    write_synthetic_series(ramp_z(), tmp_path / "a", series_uid=UID)
    small = CTVolume(hu=np.zeros((3, 8, 8), np.int16), spacing=(2, 2, DZ), origin=(0, 0, 100))
    write_synthetic_series(small, tmp_path / "b", series_uid=UID)
    msg = load_error([tmp_path])
    assert UID in msg and "mixed matrix sizes" in msg
    assert "16x16 (10 slices)" in msg and "8x8 (3 slices)" in msg


def test_localizer_in_series_is_dropped(tmp_path: Path) -> None:
    vol = ramp_z()
    write_synthetic_series(vol, tmp_path / "axial", series_uid=UID)

    def scout(k: int, ds) -> None:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]

    write_synthetic_series(CTVolume(hu=np.zeros((1, 40, 24), np.int16), spacing=(1, 1, 1)),
                           tmp_path / "scout", series_uid=UID, edit=scout)
    got = load_series([tmp_path])[0]
    np.testing.assert_array_equal(got.hu, vol.hu)
    assert any("dropped 1 localizer" in w for w in got.warnings)


# --------------------------------------------------------------------------- modality, pixels


def test_non_ct_modality_is_refused_naming_it(tmp_path: Path) -> None:
    write_synthetic_series(ramp_z(), tmp_path, modality="MR", series_uid=UID)
    msg = load_error([tmp_path])
    assert "no axial CT series" in msg and "MR" in msg and UID in msg
    msg = load_error([tmp_path], series_uids=[UID])
    assert "modality is MR, not CT" in msg and UID in msg


def test_missing_pixel_data_is_refused_naming_file(tmp_path: Path) -> None:
    write_synthetic_series(ramp_z(), tmp_path)
    ds = dcmread(tmp_path / "slice_0006.dcm")
    del ds.PixelData
    ds.save_as(tmp_path / "slice_0006.dcm")
    msg = load_error([tmp_path])
    assert "slice_0006.dcm" in msg and "no pixel data" in msg


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless], ids=lambda s: s.name)
def test_damaged_compressed_pixels_are_refused(syntax: str, tmp_path: Path) -> None:
    if not encoder_available(syntax):
        pytest.skip(f"no encoder for {syntax}")
    write_synthetic_series(ramp_z(), tmp_path, syntax)
    f = tmp_path / "slice_0002.dcm"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 60] + b"\x00" * 60)  # the codestream's end is garbage
    ds = dcmread(f, stop_before_pixels=True)
    assert ds.Modality == "CT"
    msg = load_error([tmp_path])
    assert "slice_0002.dcm" in msg and "cannot decode the pixel data" in msg
    assert syntax.name in msg


def test_unsupported_transfer_syntax_names_the_fix(tmp_path: Path) -> None:
    write_synthetic_series(ramp_z(), tmp_path, RLELossless)
    f = tmp_path / "slice_0001.dcm"
    ds = dcmread(f)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video: pydicom cannot decode
    ds.save_as(f)
    msg = load_error([tmp_path])
    assert "slice_0001.dcm" in msg and "1.2.840.10008.1.2.4.100" in msg
    assert "no decoder" in msg and "gdcmconv" in msg


def test_truncated_uncompressed_pixels_are_refused(tmp_path: Path) -> None:
    write_synthetic_series(ramp_z(), tmp_path)
    f = tmp_path / "slice_0007.dcm"
    f.write_bytes(f.read_bytes()[:-100])
    msg = load_error([tmp_path])
    assert "slice_0007.dcm" in msg and ("cannot decode" in msg or "damaged" in msg)


# --------------------------------------------------------------------------- not DICOM


def test_non_dicom_files_are_skipped_and_counted(tmp_path: Path) -> None:
    vol = ramp_z()
    write_synthetic_series(vol, tmp_path)
    (tmp_path / "notes.txt").write_text("not a DICOM file")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    (tmp_path / "empty.dcm").write_bytes(b"")
    got = load_series([tmp_path])[0]
    np.testing.assert_array_equal(got.hu, vol.hu)
    assert any("skipped 3 file(s)" in w for w in got.warnings)


def test_nothing_dicom_is_refused_naming_the_input(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.dcm").write_bytes(b"\x00" * 300)
    msg = load_error([tmp_path])
    assert str(tmp_path) in msg and "no DICOM series found" in msg and "2 file(s)" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no files at all" in load_error([empty])
    assert "no such file or folder" in load_error([tmp_path / "absent"])


def test_damaged_header_value_is_refused(tmp_path: Path) -> None:
    write_synthetic_series(ramp_z(), tmp_path)
    f = tmp_path / "slice_0002.dcm"
    data = f.read_bytes()
    assert data.count(b"0.0\\0.0\\5.0") == 1
    f.write_bytes(data.replace(b"0.0\\0.0\\5.0", b"0.0\\x.x\\5.0"))
    msg = load_error([tmp_path])
    assert "slice_0002.dcm" in msg and "ImagePositionPatient" in msg


# --------------------------------------------------------------------------- rescale, single slice


def test_missing_rescale_refused_when_values_are_not_hu(tmp_path: Path) -> None:
    def strip(k: int, ds) -> None:
        del ds.RescaleSlope
        del ds.RescaleIntercept

    write_synthetic_series(ramp_z(), tmp_path, series_uid=UID, signed=False, rescale_intercept=-1024, edit=strip)
    msg = load_error([tmp_path])
    assert UID in msg and "RescaleSlope/RescaleIntercept are missing" in msg


def test_missing_rescale_accepted_when_values_are_already_hu(tmp_path: Path) -> None:
    hu = np.full((4, 16, 16), -1000, np.int16)
    hu[:, 4:12, 4:12] = 40

    def strip(k: int, ds) -> None:
        del ds.RescaleSlope
        del ds.RescaleIntercept

    write_synthetic_series(CTVolume(hu=hu, spacing=(1, 1, 2)), tmp_path, rescale_intercept=0, edit=strip)
    got = load_series([tmp_path])[0]
    np.testing.assert_array_equal(got.hu, hu)
    assert any("taken as HU unchanged" in w for w in got.warnings)


def test_single_slice_loads_with_warning(tmp_path: Path) -> None:
    vol = ramp_z()
    write_synthetic_series(vol, tmp_path, slices=[3])
    got = load_series([tmp_path])[0]
    assert got.shape == (1, NY, NX)
    np.testing.assert_array_equal(got.hu[0], vol.hu[3])
    assert got.spacing[2] == pytest.approx(DZ)  # from SliceThickness
    assert any("single-slice" in w and "SliceThickness" in w for w in got.warnings)


def test_single_slice_without_thickness_is_refused(tmp_path: Path) -> None:
    write_synthetic_series(ramp_z(), tmp_path, slices=[3], series_uid=UID,
                           edit=lambda k, ds: delattr(ds, "SliceThickness"))
    msg = load_error([tmp_path])
    assert UID in msg and "single slice" in msg


def test_secondary_capture_without_geometry_is_dropped(tmp_path: Path) -> None:
    vol = ramp_z()
    write_synthetic_series(vol, tmp_path / "axial", series_uid=UID)

    def dose_report(k: int, ds) -> None:
        ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
        del ds.ImagePositionPatient
        del ds.ImageOrientationPatient

    write_synthetic_series(CTVolume(hu=np.zeros((1, 20, 30), np.int16), spacing=(1, 1, 1)),
                           tmp_path / "report", series_uid=UID, edit=dose_report)
    got = load_series([tmp_path])[0]
    np.testing.assert_array_equal(got.hu, vol.hu)
    assert any("dropped 1 secondary image" in w for w in got.warnings)


def test_slice_without_position_is_refused(tmp_path: Path) -> None:
    write_synthetic_series(ramp_z(), tmp_path, edit=lambda k, ds: k == 4 and delattr(ds, "ImagePositionPatient"))
    msg = load_error([tmp_path])
    assert "slice_0004.dcm" in msg and "ImagePositionPatient is missing" in msg
