"""The one endpoint catalogue: complete against PROTOCOL.md, read by every consumer, with
standard codes, and finite values (null with a reason) in every output."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from readerapp import endpoints as catalogue
from readerapp.analysis import measure
from readerapp.labels import BIN_EDGES_HU, CONSOLIDATION_RANGE_HU, GGO_RANGE_HU, N_BINS, hu_bin
from readerapp.volume import CTVolume

ROOT = Path(__file__).resolve().parents[1]

#: PROTOCOL.md, "Endpoints of one scan": the key column of its table, row by row (a row may name
#: two keys). Copied here so the test runs without the shared folder; a change of the protocol's
#: table must change this list, the catalogue and the README together.
PROTOCOL_TABLE_ROWS = (
    "lung_volume_ml",
    "lesion_volume_ml, lesion_pct",
    "ggo_volume_ml, ggo_pct",
    "consolidation_volume_ml, consolidation_pct",
    "lesion_weight_hu_voxel",
    "lesion_weight_hu_ml",
    "lesion_mass_g",
    "density_histogram",
    "mean_lung_hu",
)


def protocol_keys() -> list[str]:
    return [k.strip() for row in PROTOCOL_TABLE_ROWS for k in row.split(",")]


def test_every_protocol_key_is_in_the_catalogue_exactly_once_in_protocol_order() -> None:
    keys = [e.key for e in catalogue.CATALOGUE]
    assert len(keys) == len(set(keys))
    assert keys == protocol_keys()
    assert tuple(keys) == catalogue.KEYS and set(catalogue.BY_KEY) == set(keys)


def test_readme_names_the_catalogue_keys() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("exactly PROTOCOL.md's endpoint keys")
    named = re.findall(r"`([a-z_]+)`", text[start:start + 600])
    assert [k for k in named if k in catalogue.BY_KEY or k.endswith(("_ml", "_pct", "_hu", "_g"))] \
        == list(catalogue.KEYS)


def test_every_entry_has_a_title_unit_and_ucum() -> None:
    for e in catalogue.CATALOGUE:
        assert e.title and e.finding.standard, e.key
        if e.scalar:
            assert e.unit is not None and e.unit.display and e.unit.ucum, e.key
            assert e.concept is not None, e.key
    units = {e.key: e.unit.ucum for e in catalogue.CATALOGUE if e.unit}
    assert units["lung_volume_ml"] == "ml" and units["lesion_pct"] == "%"
    assert units["mean_lung_hu"] == "[hnsf'U]" and units["lesion_mass_g"] == "g"


def _pydicom_concepts() -> dict[tuple[str, str], set[str]]:
    """(scheme, value) -> the meanings pydicom's copy of PS3.16 gives it (lower case)."""
    from pydicom.sr._concepts_dict import concepts

    out: dict[tuple[str, str], set[str]] = {}
    for scheme, by_name in concepts.items():
        for entries in by_name.values():
            for value, (meaning, _cids) in entries.items():
                out.setdefault((scheme, value), set()).add(meaning.lower())
    return out


#: Standard codes not in pydicom's copy of PS3.16, each with its source in endpoints.py's notes.
VERIFIED_ELSEWHERE = {catalogue.CONSOLIDATION}


def test_standard_codes_are_the_standards_own() -> None:
    known = _pydicom_concepts()
    used = {catalogue.LUNG, catalogue.GROUND_GLASS_OPACITY, catalogue.CONSOLIDATION, catalogue.LESION,
            catalogue.VOLUME, catalogue.SUM_OF_SEGMENTED_VOXELS, catalogue.ATTENUATION_COEFFICIENT,
            catalogue.MEAN, catalogue.ANATOMICAL_STRUCTURE, catalogue.MORPHOLOGICALLY_ABNORMAL_STRUCTURE}
    for e in catalogue.CATALOGUE:
        used |= {c for c in (e.concept, e.finding, e.derivation, e.method) if c is not None and c.standard}
    for code in used - VERIFIED_ELSEWHERE:
        assert code.meaning.lower() in known.get((code.scheme, code.value), set()), code
    # the brief's two anchors
    assert catalogue.LUNG.as_tuple() == ("39607008", "SCT", "Lung")
    assert catalogue.GROUND_GLASS_OPACITY.as_tuple() == ("112120", "DCM", "Ground glass opacity")
    for unit in (catalogue.PERCENT, catalogue.HU):
        assert unit.meaning.lower() in known[("UCUM", unit.ucum)]


def test_private_scheme_only_where_no_standard_concept_exists() -> None:
    private = {e.key for e in catalogue.CATALOGUE if e.concept is not None and not e.concept.standard}
    assert private == {"lesion_weight_hu_voxel", "lesion_weight_hu_ml", "lesion_mass_g"}
    for e in catalogue.CATALOGUE:
        if e.concept is not None and not e.concept.standard:
            assert e.concept.scheme == catalogue.PRIVATE_SCHEME


def test_bins_derive_from_the_one_set_of_edges() -> None:
    bins = catalogue.BINS
    assert len(bins) == N_BINS == len(BIN_EDGES_HU) + 1
    assert bins[0].lower_hu is None and bins[-1].upper_hu is None
    assert [b.upper_hu for b in bins[:-1]] == list(BIN_EDGES_HU) == [b.lower_hu for b in bins[1:]]
    assert [b.name for b in bins] == ["below_-750", "-750_to_-300", "-300_to_50", "50_and_above"]
    assert (bins[1].lower_hu, bins[1].upper_hu) == GGO_RANGE_HU
    assert (bins[2].lower_hu, bins[2].upper_hu) == CONSOLIDATION_RANGE_HU
    for i, b in enumerate(bins):
        for hu in (b.lower_hu, None if b.upper_hu is None else b.upper_hu - 1):
            if hu is not None:
                assert hu_bin(hu) == i


def _case(lung: bool = True) -> tuple[CTVolume, np.ndarray]:
    rng = np.random.default_rng(3)
    hu = rng.integers(-1000, 100, size=(4, 8, 8)).astype(np.int16)
    labels = np.zeros(hu.shape, np.uint8)
    if lung:
        labels[:, 2:6, 2:6] = 1
        labels[1, 3:5, 3:5] = 2
        labels[2, 3:5, 3:5] = 3
    return CTVolume(hu=hu, spacing=(0.5, 0.5, 2.0)), labels


def test_json_endpoint_keys_are_the_catalogue_keys() -> None:
    vol, labels = _case()
    result = measure(vol, labels, backend="numpy", check_calibration=False)
    d = result.endpoints.to_dict()
    assert list(d) == [*catalogue.KEYS, catalogue.NULL_REASONS_KEY]
    out = result.to_json()
    assert list(out)[: len(catalogue.KEYS)] == list(catalogue.KEYS)
    assert [b["name"] for b in out["density_histogram"]] == [b.name for b in catalogue.BINS]
    assert out["segmentation_source"] == "corrected"


def test_zero_lung_gives_nulls_with_reasons_in_the_json() -> None:
    vol, labels = _case(lung=False)
    out = measure(vol, labels, backend="numpy", check_calibration=False).to_json()
    reasons = out[catalogue.NULL_REASONS_KEY]
    for e in catalogue.CATALOGUE:
        if e.kind in (catalogue.EndpointKind.PERCENT, catalogue.EndpointKind.MEAN):
            assert out[e.key] is None and reasons[e.key], e.key
        elif e.scalar:
            assert out[e.key] == 0, e.key  # volumes, weights and mass of nothing are 0
    json.loads(json.dumps(out, allow_nan=False))


def test_json_never_holds_a_non_finite_number() -> None:
    vol, labels = _case()
    result = measure(vol, labels, backend="numpy", check_calibration=False)
    result.calibration = {"air_hu": float("nan"), "blood_hu": float("inf"), "ok": True}
    out = result.to_json()
    assert out["calibration"]["air_hu"] is None and out["calibration"]["blood_hu"] is None
    assert "calibration.air_hu" in out[catalogue.NULL_REASONS_KEY]
    json.dumps(out, allow_nan=False)  # would raise on NaN or Infinity


def test_sanitize_keeps_finite_values_and_records_each_replacement() -> None:
    reasons: dict[str, str] = {}
    clean = catalogue.sanitize({"a": 1.5, "b": [0.0, float("-inf")], "c": None, "d": "x"}, reasons)
    assert clean == {"a": 1.5, "b": [0.0, None], "c": None, "d": "x"}
    assert list(reasons) == ["b.1"]


def test_study_consumers_read_the_catalogue() -> None:
    from readerapp.study import export, rules

    flat = catalogue.flat_keys()
    assert rules.endpoint_keys() == flat
    assert export.value_keys()[: len(flat)] == flat
    assert export.change_keys()[: len(flat)] == flat
    vol, labels = _case()
    d = measure(vol, labels, backend="numpy", check_calibration=False).endpoints.to_dict()
    assert list(rules.flatten_endpoints(d)) == flat
    for k in flat:
        assert catalogue.flat_label(k) != k  # every flat key has a reader-facing name


def test_study_null_reasons_and_csv_cells() -> None:
    from readerapp.study import export, rules

    vol, labels = _case(lung=False)
    d = measure(vol, labels, backend="numpy", check_calibration=False).endpoints.to_dict()
    why = rules.null_reasons(d)
    assert why["lesion_pct"] == catalogue.ZERO_LUNG_REASON
    assert all(k in catalogue.flat_keys() for k in why)
    flat = rules.flatten_endpoints(d)
    assert flat["lesion_pct"] is None and export.fmt(flat["lesion_pct"]) == ""
    # an endpoint dict from before the reasons existed: its nulls still get one
    legacy = {k: v for k, v in d.items() if k != catalogue.NULL_REASONS_KEY}
    assert rules.null_reasons(legacy)["lesion_pct"]
    with pytest.raises(ValueError, match="non-finite"):
        export.fmt(math.nan)


def test_discordance_when_lesion_pct_is_undefined_in_one_read_only() -> None:
    from readerapp.study import rules
    from readerapp.study.config import StudyConfig

    cfg = StudyConfig(name="t")
    c = rules.compare(cfg, {"lesion_pct": None}, None, {"lesion_pct": 3.0}, None, False)
    assert c.discordant and "one read only" in c.reasons[0]
    assert not rules.compare(cfg, {"lesion_pct": None}, None, {"lesion_pct": None}, None, False).discordant


def test_statuses_are_enums_with_the_stored_strings() -> None:
    from readerapp.study.status import (
        AdjudicationState,
        CaseStatus,
        ReadKind,
        ReadStatus,
        WorklistStatus,
    )

    assert [s.value for s in CaseStatus] == ["reading", "concordant", "discordant", "adjudicated"]
    assert [s.value for s in ReadStatus] == ["draft", "signed"]
    assert [s.value for s in ReadKind] == ["read", "adjudication"]
    assert [s.value for s in WorklistStatus] == ["new", "in progress", "signed"]
    assert [s.value for s in AdjudicationState] == ["pending", "adjudicated"]
    assert [s.value for s in catalogue.SegmentationSource] == ["auto", "loaded", "corrected"]
    assert CaseStatus("discordant") is CaseStatus.DISCORDANT and CaseStatus.READING == "reading"
    assert json.dumps({"s": CaseStatus.ADJUDICATED}) == '{"s": "adjudicated"}'


@pytest.mark.parametrize("vml", [0.0, -1.0, math.nan, math.inf])
def test_a_voxel_volume_that_gives_no_volumes_is_refused(vml: float) -> None:
    from readerapp.densitometry import DensityTable
    from readerapp.errors import SeriesError

    with pytest.raises(SeriesError, match="voxel volume"):
        DensityTable().endpoints(vml)
