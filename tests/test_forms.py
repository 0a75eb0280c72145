"""The read forms: JSON round trip, validation messages, completeness and totals."""

from __future__ import annotations

import json

import pytest

from readerapp.errors import ReaderAppError
from readerapp.forms import FEATURE_KEYS, FIBROSIS_FEATURES, LOBES, ReadForm


def _complete(with_fibrosis: bool) -> ReadForm:
    form = ReadForm.blank(with_fibrosis)
    for i, lobe in enumerate(LOBES):
        form.severity[lobe] = i  # 0+1+2+3+4 = 10
    if with_fibrosis:
        assert form.fibrosis is not None
        for k in FEATURE_KEYS:
            for lobe in LOBES:
                form.fibrosis[k][lobe] = False
        form.fibrosis["honeycombing"]["RLL"] = True
    return form


def test_keys_and_definitions():
    assert LOBES == ("RUL", "RML", "RLL", "LUL", "LLL")
    assert FEATURE_KEYS == (
        "cord_like", "honeycombing", "septal_thickening", "intralobular_thickening",
        "pleural_thickening",
    )
    for f in FIBROSIS_FEATURES:
        assert len(f.definition) > 80 and f.title and f.source
    assert "charter" in FIBROSIS_FEATURES[-1].source.lower()


def test_round_trip_and_json_shape():
    form = _complete(True)
    form.comment = "ok"
    d = json.loads(json.dumps(form.to_dict()))
    assert list(d) == ["severity", "fibrosis", "comment"]
    assert d["severity"] == {"RUL": 0, "RML": 1, "RLL": 2, "LUL": 3, "LLL": 4}
    assert d["fibrosis"]["honeycombing"]["RLL"] is True
    back = ReadForm.from_dict(d)
    assert back == form
    assert ReadForm.from_dict(_complete(False).to_dict()).fibrosis is None


def test_missing_total_patient_level():
    blank = ReadForm.blank(True)
    assert len(blank.missing(require_fibrosis=True)) == 5 + 25
    assert blank.missing(require_fibrosis=False) == [f"Severity {lobe}" for lobe in LOBES]
    # Named as the form shows them: the feature's title, not its key.
    fib = blank.missing(require_fibrosis=True)[5:]
    assert fib[0] == f"{FIBROSIS_FEATURES[0].title}, RUL" and not any("_" in m for m in fib)
    assert len(ReadForm.blank(False).missing(require_fibrosis=True)) == 30
    form = _complete(True)
    assert form.missing(require_fibrosis=True) == []
    assert form.severity_total() == 10
    form.severity["LLL"] = None
    assert form.missing(True) == ["Severity LLL"] and form.severity_total() == 6
    pl = form.fibrosis_patient_level()
    assert pl["honeycombing"] is True and sum(pl.values()) == 1
    assert ReadForm.blank(False).fibrosis_patient_level() == dict.fromkeys(FEATURE_KEYS, False)


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"severity": {"RUL": 6}}, "severity RUL"),
        ({"severity": {"RUL": True}}, "severity RUL"),
        ({"severity": {"RUL": "2"}}, "severity RUL"),
        ({"severity": {"XYZ": 1}}, "unknown lobe"),
        ({"severity": {}, "fibrosis": {"fog": {}}}, "unknown feature"),
        ({"severity": {}, "fibrosis": {"cord_like": {"RUL": 1}}}, "cord_like RUL"),
        ({"severity": {}, "colour": 1}, "unknown form field"),
        ({}, "severity"),
        ([], "JSON object"),
    ],
)
def test_validation_errors(bad, words):
    with pytest.raises(ReaderAppError, match=words):
        ReadForm.from_dict(bad)
