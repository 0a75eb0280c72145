"""Saving and loading a read folder: round trip, checksum, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from readerapp.forms import LOBES, ReadForm
from readerapp.readfile import ReadFileError, load_read, save_read
from readerapp.volume import CTVolume


@pytest.fixture()
def tiny():
    rng = np.random.default_rng(1)
    hu = rng.integers(-1000, 100, size=(6, 20, 24)).astype(np.int16)
    vol = CTVolume(hu=hu, spacing=(0.7, 0.7, 2.0), origin=(-10.0, 5.0, 30.0), series_uid="1.2.3.4")
    labels = rng.integers(0, 4, size=hu.shape).astype(np.uint8)
    return vol, labels


def test_round_trip(tmp_path, tiny):
    vol, labels = tiny
    form = ReadForm.blank(True)
    form.severity.update(dict.fromkeys(LOBES, 2))
    endpoints = {"lesion_pct": 12.5, "lung_volume_ml": 3000.0}
    folder = save_read(tmp_path / "read", volume=vol, labels=labels, form=form,
                       endpoints=endpoints, source="corrected")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["endpoints.json", "form.json", "labels.nii.gz", "read.json"]
    read = load_read(folder, vol)
    assert np.array_equal(read.labels, labels)
    assert read.form == form and read.endpoints == endpoints
    assert read.meta["series_uid"] == "1.2.3.4" and read.meta["segmentation_source"] == "corrected"
    assert len(read.meta["labels_sha256"]) == 64
    created = read.meta["created_utc"]
    # Re-saving keeps the creation time and leaves no temporary files behind.
    save_read(folder, volume=vol, labels=labels, form=form, endpoints=endpoints, source="auto")
    again = load_read(folder)
    assert again.meta["created_utc"] == created and again.meta["segmentation_source"] == "auto"
    assert sorted(p.name for p in folder.iterdir()) == names


def test_damaged_label_file_is_refused(tmp_path, tiny):
    vol, labels = tiny
    folder = save_read(tmp_path / "r", volume=vol, labels=labels, form=ReadForm.blank(False),
                       endpoints={})
    (folder / "labels.nii.gz").write_bytes(b"garbage")
    with pytest.raises(ReadFileError, match="checksum"):
        load_read(folder)


def test_other_series_and_bad_form(tmp_path, tiny):
    vol, labels = tiny
    folder = save_read(tmp_path / "r", volume=vol, labels=labels, form=ReadForm.blank(False),
                       endpoints={})
    other = CTVolume(hu=vol.hu, spacing=vol.spacing, series_uid="9.9")
    with pytest.raises(ReadFileError, match="another series"):
        load_read(folder, other)
    (folder / "form.json").write_text(json.dumps({"severity": {"RUL": 9}}))
    with pytest.raises(ReadFileError, match="form.json"):
        load_read(folder)
    with pytest.raises(ReadFileError, match="not a folder"):
        load_read(tmp_path / "nothing")
    with pytest.raises(ReadFileError, match="source"):
        save_read(tmp_path / "x", volume=vol, labels=labels, form=ReadForm(), endpoints={},
                  source="manual")


def test_unwritable_file_in_the_read_folder_is_a_clear_error(tmp_path, tiny):
    vol, labels = tiny
    folder = tmp_path / "r"
    (folder / "form.json" / "in_the_way").mkdir(parents=True)
    with pytest.raises(ReadFileError, match=r"cannot save .*form\.json"):
        save_read(folder, volume=vol, labels=labels, form=ReadForm.blank(False), endpoints={})
