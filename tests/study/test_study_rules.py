"""Study configuration, reading rules and de-identification: small, fast, no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from readerapp.study.config import StudyConfig, load_config
from readerapp.study.errors import StudyConfigError
from readerapp.study.rules import combine, compare, endpoint_keys, flatten_endpoints


def test_config_from_toml_and_json(tmp_path: Path) -> None:
    t = tmp_path / "s.toml"
    t.write_text('name = "T"\nreading_mode = "longitudinal"\n[discordance]\nlesion_pct_points = 7\n')
    cfg = load_config(t)
    assert cfg.longitudinal and cfg.discordance.lesion_pct_points == 7.0
    assert cfg.baseline == "baseline" and cfg.needs_fibrosis("day90") and not cfg.needs_fibrosis("day28")
    j = tmp_path / "s.json"
    j.write_text(json.dumps(cfg.to_dict()))
    assert load_config(j) == cfg
    assert StudyConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize(
    "text, words",
    [
        ('name = "T"\nvisits = ["a", "b"]\nfibrosis_visits = ["day90"]\n', "unknown visit"),
        ('name = "T"\nreading_mode = "random"\n', "reading_mode"),
        ('name = "T"\ncolour = 1\n', "unknown setting"),
        ('visits = ["a"]\n', "'name'"),
        ('name = "T"\n[discordance]\nlesion_pct_points = "five"\n', "lesion_pct_points"),
        ('name = "T"\n[security]\nmax_failed_logins = 0\n', "positive"),
        ('name = [', "not valid TOML"),
    ],
)
def test_config_errors_name_the_file_and_setting(tmp_path: Path, text: str, words: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(StudyConfigError) as exc:
        load_config(p)
    assert str(p) in str(exc.value) and words in str(exc.value)


def _ep(lesion_pct: float) -> dict:
    return {"lesion_pct": lesion_pct, "lung_volume_ml": 1000.0,
            "density_histogram": [{"volume_ml": 1.0, "pct": 0.1}] * 4}


def _form(fib: bool | None) -> dict:
    lobes = ("RUL", "RML", "RLL", "LUL", "LLL")
    feats = ("cord_like", "honeycombing", "septal_thickening", "intralobular_thickening", "pleural_thickening")
    return {"severity": dict.fromkeys(lobes, 1),
            "fibrosis": None if fib is None else {f: dict.fromkeys(lobes, fib and f == "honeycombing") for f in feats}}


def test_discordance_thresholds() -> None:
    cfg = StudyConfig(name="T")
    assert not compare(cfg, _ep(10.0), None, _ep(15.0), None, False).discordant  # exactly 5: concordant
    c = compare(cfg, _ep(10.0), None, _ep(15.01), None, False)
    assert c.discordant and "lesion_pct" in c.reasons[0]
    # a fibrosis feature present in one read only: discordant on Day-90 scans
    c = compare(cfg, _ep(10.0), _form(True), _ep(10.0), _form(False), True)
    assert c.discordant and "honeycombing" in c.reasons[0]
    assert not compare(cfg, _ep(10.0), _form(False), _ep(10.0), _form(False), True).discordant
    off = StudyConfig.from_dict({"name": "T", "discordance": {"fibrosis_any_feature": False}})
    assert not compare(off, _ep(10.0), _form(True), _ep(10.0), _form(False), True).discordant


def test_combination_and_flattening() -> None:
    assert combine([1.0, 2.0]) == 1.5
    assert combine([1.0, None]) is None
    flat = flatten_endpoints(_ep(3.0))
    assert list(flat) == endpoint_keys()
    assert flat["lesion_pct"] == 3.0 and flat["density_histogram.below_-750.pct"] == 0.1


def test_deidentify_removes_identity_and_remaps_uids_consistently() -> None:
    from readerapp.study.deid import UidMapper, deidentify

    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.1"
    ds.FrameOfReferenceUID = "1.2.3.4.9"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN123"
    ds.StudyDate = "20200301"
    ds.InstitutionName = "General"
    ds.Modality = "CT"
    ds.Rows = 2
    inner = Dataset()
    inner.FrameAcquisitionDateTime = "20200301101010"
    inner.ReferencedSOPInstanceUID = "1.2.3.4.5"
    inner.ReferencedSOPClassUID = CTImageStorage
    inner.ContentCreatorName = "Smith^J"
    inner.FrameReferenceTime = 1.0
    inner.FrameAcquisitionNumber = 3
    group = Dataset()
    group.FrameContentSequence = [inner]
    ds.SharedFunctionalGroupsSequence = [group]
    org = Dataset()
    org.DimensionOrganizationUID = "1.2.3.4.7"
    ds.DimensionOrganizationSequence = [org]
    ds.add_new(0x00091010, "LO", "secret")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    m = UidMapper("k")
    out = deidentify(ds, "ABCD-EFGH", m)
    assert str(out.PatientName) == "ABCD-EFGH^" and out.PatientID == "ABCD-EFGH"
    assert out.StudyDate == "" and "InstitutionName" not in out and (0x0009, 0x1010) not in out
    assert out.SOPInstanceUID == m("1.2.3.4.5") != "1.2.3.4.5" and out.SOPInstanceUID.startswith("2.25.")
    assert out.StudyInstanceUID == UidMapper("k")("1.2.3.4") != UidMapper("other")("1.2.3.4")
    nested = out.SharedFunctionalGroupsSequence[0].FrameContentSequence[0]
    assert "FrameAcquisitionDateTime" not in nested and "ContentCreatorName" not in nested
    # a functional-group macro keeps only its own attributes (Frame Content: no references)
    assert {e.keyword for e in nested} == {"FrameAcquisitionNumber"}
    # UIDs inside sequences are remapped consistently too
    assert out.DimensionOrganizationSequence[0].DimensionOrganizationUID == m("1.2.3.4.7")
    assert out.PatientIdentityRemoved == "YES" and len(out.DeidentificationMethod) <= 64
    assert ds.PatientName == "Doe^Jane"  # the input is untouched


def test_export_folder_names_from_the_manifest_stay_inside_the_export() -> None:
    from readerapp.study.export import _safe

    assert _safe("S-01") == "S-01" and _safe("day 10") == "day_10"
    assert _safe("a/../b") == "a_.._b"  # separators go, so ".." is only part of a name
    for name in ("..", ".", ""):
        assert _safe(name) not in ("..", ".", "")
