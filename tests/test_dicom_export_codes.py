"""The exported SEG and SR are coded from the catalogue with standard codes only, carry no number
for a null value, and pass dicom3tools' ``dciodvfy`` without a coding-scheme complaint."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from readerapp import endpoints as catalogue
from readerapp.analysis import measure
from readerapp.io.dicom import load_series
from readerapp.io.dicom_write import write_synthetic_series
from readerapp.phantom import make_chest_phantom
from readerapp.study.dicom_export import load_source_images, sr_measurements, write_seg, write_sr

pytest.importorskip("highdicom", reason="highdicom writes the SEG and SR")


class Exported:
    def __init__(self, folder: Path) -> None:
        ph = make_chest_phantom((12, 48, 48), spacing=(6.0, 6.0, 10.0))
        src = folder / "ct"
        write_synthetic_series(ph.volume, src)
        self.volume = load_series([src])[0]
        self.result = measure(self.volume, ph.truth, backend="numpy", check_calibration=False)
        self.endpoints = self.result.endpoints.to_dict()
        self.sources = load_source_images(src)
        self.seg_path, self.sr_path = folder / "seg.dcm", folder / "sr.dcm"
        self.seg = write_seg(self.sources, self.volume, self.result.labels, self.seg_path)
        write_sr(self.sources, self.seg, self.endpoints, self.sr_path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    yield Exported(tmp_path_factory.mktemp("dicom-export"))


def coded(ds: Any) -> list[tuple[str, str, str]]:
    """Every (value, scheme, meaning) anywhere in a dataset."""
    out = []
    for item in _items(ds):
        if "CodeValue" in item and "CodingSchemeDesignator" in item:
            out.append((str(item.CodeValue), str(item.CodingSchemeDesignator), str(item.CodeMeaning)))
    return out


def _items(ds: Any) -> Iterator[Any]:
    yield ds
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _items(item)


def test_seg_segments_carry_the_standard_codes(exported: Exported) -> None:
    import pydicom

    seg = pydicom.dcmread(exported.seg_path)
    types = [tuple(s.SegmentedPropertyTypeCodeSequence[0][k].value
                   for k in ("CodeValue", "CodingSchemeDesignator")) for s in seg.SegmentSequence]
    assert types == [("39607008", "SCT"), ("112120", "DCM"), (catalogue.CONSOLIDATION.value, "SCT")]
    cats = [s.SegmentedPropertyCategoryCodeSequence[0].CodeValue for s in seg.SegmentSequence]
    assert cats == ["91723000", "49755003", "49755003"]
    schemes = {c[1] for c in coded(seg)}
    assert catalogue.PRIVATE_SCHEME not in schemes and schemes <= catalogue.STANDARD_SCHEMES


def test_sr_measurements_are_standard_coded_and_match_the_endpoints(exported: Exported) -> None:
    import pydicom

    sr = pydicom.dcmread(exported.sr_path)
    codes = coded(sr)
    assert catalogue.PRIVATE_SCHEME not in {c[1] for c in codes}
    assert {c[1] for c in codes} <= catalogue.STANDARD_SCHEMES
    nums = [i for i in _items(sr) if getattr(i, "ValueType", "") == "NUM"]
    values = sorted(float(i.MeasuredValueSequence[0].NumericValue) for i in nums)
    expected = sorted(v for found in sr_measurements(exported.endpoints).values() for _, v in found)
    assert len(values) == len(expected) == 8  # 4 volumes, 3 percentages, mean lung HU
    assert np.allclose(values, expected, rtol=1e-9)
    units = {i.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue for i in nums}
    assert units == {"ml", "%", "[hnsf'U]"}


def test_private_codes_only_on_request(exported: Exported) -> None:
    plain = sr_measurements(exported.endpoints)
    extra = sr_measurements(exported.endpoints, include_private=True)
    keys = {e.key for found in plain.values() for e, _ in found}
    more = {e.key for found in extra.values() for e, _ in found} - keys
    assert more == {"lesion_weight_hu_voxel", "lesion_weight_hu_ml", "lesion_mass_g"}


def test_sr_writes_no_number_for_a_null_value(exported: Exported, tmp_path: Path) -> None:
    import pydicom

    zero = measure(exported.volume, np.zeros_like(exported.result.labels), backend="numpy",
                   check_calibration=False).endpoints.to_dict()
    found = {e.key for items in sr_measurements(zero).values() for e, _ in items}
    assert not any(k.endswith("_pct") for k in found) and "mean_lung_hu" not in found
    assert "lung_volume_ml" in found  # a zero volume is a value
    write_sr(exported.sources, exported.seg, zero, tmp_path / "sr0.dcm")
    sr = pydicom.dcmread(tmp_path / "sr0.dcm")
    units = [i.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue
             for i in _items(sr) if getattr(i, "ValueType", "") == "NUM"]
    assert units and set(units) == {"ml"}


DCIODVFY = shutil.which("dciodvfy")


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (dicom3tools) is not installed: apt-get install dicom3tools")
@pytest.mark.parametrize("which", ["seg", "sr"])
def test_dciodvfy_finds_no_coding_scheme_problem(exported: Exported, which: str) -> None:
    path = exported.seg_path if which == "seg" else exported.sr_path
    proc = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True, timeout=120)
    report = proc.stdout + proc.stderr
    assert ("Segmentation" if which == "seg" else "Comprehensive3DSR") in report  # it did validate
    lines = report.splitlines()
    assert not [ln for ln in lines if "Coding Scheme" in ln or catalogue.PRIVATE_SCHEME in ln], report
    assert not [ln for ln in lines if ln.startswith("Error")], report
