"""Label maps written and read back on the series' grid; wrong grids and values refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

from readerapp.errors import LabelMapError
from readerapp.io.labelmap import read_labelmap, write_labelmap
from readerapp.volume import CTVolume


@pytest.fixture
def vol():
    rng = np.random.default_rng(0)
    return CTVolume(
        hu=rng.integers(-1000, 100, (6, 7, 8)).astype(np.int16),
        spacing=(0.7, 0.8, 2.5),
        origin=(-100.0, -120.0, 30.0),
        direction=(1, 0, 0, 0, 1, 0, 0, 0, 1),
    )


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
def test_roundtrip_is_exact(tmp_path, vol, suffix):
    labels = np.random.default_rng(1).integers(0, 4, vol.shape).astype(np.uint8)
    path = write_labelmap(tmp_path / f"labels{suffix}", labels, vol)
    notes: list[str] = []
    back = read_labelmap(path, vol, notes)
    assert back.dtype == np.uint8 and np.array_equal(back, labels)
    assert notes == []


def test_geometry_is_written(tmp_path, vol):
    import SimpleITK as sitk

    path = write_labelmap(tmp_path / "l.nrrd", np.zeros(vol.shape, np.uint8), vol)
    img = sitk.ReadImage(str(path))
    assert img.GetSize() == (8, 7, 6)
    assert np.allclose(img.GetSpacing(), vol.spacing)
    assert np.allclose(img.GetOrigin(), vol.origin)


def test_wrong_grid_is_refused_with_both_sizes(tmp_path, vol):
    other = CTVolume(hu=np.zeros((5, 7, 8), np.int16), spacing=vol.spacing)
    path = write_labelmap(tmp_path / "l.nii.gz", np.zeros(other.shape, np.uint8), other)
    with pytest.raises(LabelMapError, match=r"l\.nii\.gz.*\(8, 7, 5\).*\(8, 7, 6\)"):
        read_labelmap(path, vol)


def test_wrong_spacing_is_refused(tmp_path, vol):
    other = CTVolume(hu=vol.hu, spacing=(1.0, 1.0, 1.0))
    path = write_labelmap(tmp_path / "l.nii.gz", np.zeros(vol.shape, np.uint8), other)
    with pytest.raises(LabelMapError, match="spacing"):
        read_labelmap(path, vol)


def test_shifted_origin_is_accepted_with_warning(tmp_path, vol):
    other = CTVolume(hu=vol.hu, spacing=vol.spacing, origin=(0.0, 0.0, 0.0))
    path = write_labelmap(tmp_path / "l.nii.gz", np.ones(vol.shape, np.uint8), other)
    notes: list[str] = []
    assert read_labelmap(path, vol, notes).sum() == np.prod(vol.shape)
    assert notes and "origin" in notes[0]


def test_values_outside_labels_are_refused(tmp_path, vol):
    import SimpleITK as sitk

    arr = np.zeros(vol.shape, np.int16)
    arr[0, 0, 0] = 9
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(vol.spacing)
    img.SetOrigin(vol.origin)
    sitk.WriteImage(img, str(tmp_path / "bad.nrrd"))
    with pytest.raises(LabelMapError, match=r"bad\.nrrd.*\[9\]"):
        read_labelmap(tmp_path / "bad.nrrd", vol)


def test_not_an_image_and_missing_file(tmp_path, vol):
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"this is not a nifti file")
    with pytest.raises(LabelMapError, match="junk.nii.gz"):
        read_labelmap(junk, vol)
    with pytest.raises(LabelMapError, match="not found"):
        read_labelmap(tmp_path / "absent.nii.gz", vol)
    with pytest.raises(LabelMapError, match="unsupported"):
        read_labelmap(tmp_path / "x.png", vol)


def test_unwritable_target_is_a_clear_error(tmp_path, vol):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with pytest.raises(LabelMapError, match=r"labels\.nii\.gz: cannot write the label map"):
        write_labelmap(blocker / "labels.nii.gz", np.zeros(vol.shape, np.uint8), vol)
