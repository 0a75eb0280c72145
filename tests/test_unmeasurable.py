"""Nothing unmeasurable passes: refused series exit 2 with the reason, and scans that lack ribs,
trachea, aorta or half the chest still give finite outputs with the reasons for what is missing.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from readerapp.analysis import analyze
from readerapp.cli import main
from readerapp.errors import UnmeasurableError
from readerapp.io.dicom_write import write_synthetic_series
from readerapp.phantom import TISSUE_HU, make_chest_phantom
from readerapp.volume import CTVolume


def _all_finite(value) -> bool:
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    return not (isinstance(value, float) and not math.isfinite(value))


def _cli_analyze(volume: CTVolume, tmp_path, capsys) -> tuple[int, str]:
    folder = tmp_path / "series"
    write_synthetic_series(volume, folder)
    rc = main(["analyze", str(folder), "--json", str(tmp_path / "o.json"), "--quiet"])
    return rc, capsys.readouterr().err


def test_one_slice_series_is_refused(tmp_path, capsys):
    vol = make_chest_phantom((1, 128, 128), (2.5, 2.5, 5.0)).volume
    rc, err = _cli_analyze(vol, tmp_path, capsys)
    assert rc == 2
    assert "1 slice" in err and "Traceback" not in err
    assert not (tmp_path / "o.json").exists()


def test_series_without_lung_is_refused(tmp_path, capsys):
    """An abdomen-like scan: body, no air inside it."""
    ph = make_chest_phantom((20, 96, 96), (3.0, 3.0, 5.0), lesions=False)
    hu = ph.volume.hu.copy()
    hu[(hu > -1500) & (hu < -200) & ph.parts["body"]] = TISSUE_HU
    rc, err = _cli_analyze(CTVolume(hu=hu, spacing=ph.volume.spacing), tmp_path, capsys)
    assert rc == 2
    assert "no lung found" in err and "Traceback" not in err


def test_implausibly_small_lung_is_refused():
    """Four slices through the chest (a localiser-like stack): a few hundred mL at most."""
    vol = make_chest_phantom((4, 128, 128), (2.5, 2.5, 5.0)).volume
    with pytest.raises(UnmeasurableError, match="implausibly small"):
        analyze(vol, backend="numpy")


def _without_bone(volume: CTVolume) -> CTVolume:
    hu = volume.hu.copy()
    hu[hu >= 300] = TISSUE_HU
    return CTVolume(hu=hu, spacing=volume.spacing, direction=volume.direction)


def _without_trachea(ph) -> CTVolume:
    hu = ph.volume.hu.copy()
    hu[ph.parts["airway"]] = TISSUE_HU
    return CTVolume(hu=hu, spacing=ph.volume.spacing, direction=ph.volume.direction)


def _lower_half(volume: CTVolume) -> CTVolume:
    n = volume.shape[0] // 2
    return CTVolume(hu=np.ascontiguousarray(volume.hu[:n]), spacing=volume.spacing)


CASES = {
    "no_ribs": lambda: _without_bone(make_chest_phantom((40, 128, 128), (2.5, 2.5, 5.0), seed=2).volume),
    "no_trachea": lambda: _without_trachea(make_chest_phantom((40, 128, 128), (2.5, 2.5, 5.0))),
    "no_aorta": lambda: make_chest_phantom((40, 128, 128), (2.5, 2.5, 5.0),
                                           mediastinal_fat=False).volume,
    "half_chest_cut_by_the_edge": lambda: make_chest_phantom((40, 128, 128), (2.5, 2.5, 5.0),
                                                             fov_crop_mm=95.0).volume,
    "lower_half_of_the_chest": lambda: _lower_half(
        make_chest_phantom((40, 128, 128), (2.5, 2.5, 5.0)).volume),
}


@pytest.mark.parametrize("name", list(CASES))
def test_incomplete_anatomy_gives_finite_outputs_with_reasons(name):
    res = analyze(CASES[name](), backend="numpy")
    out = res.to_json()
    json.dumps(out, allow_nan=False)
    assert _all_finite(out)
    assert out["lung_volume_ml"] > 0
    cal = out["calibration"]
    if name == "no_trachea":
        assert cal["tracheal_air_hu"] is None and cal["air_not_measured_because"]
        assert any("trachea" in w for w in out["warnings"])
    if name == "no_aorta":
        assert cal["aortic_blood_hu"] is None and "disc" in cal["blood_not_measured_because"]
    for key in ("tracheal_air_hu", "aortic_blood_hu"):
        reason = ("air" if key.startswith("tracheal") else "blood") + "_not_measured_because"
        assert (cal[key] is None) == bool(cal[reason]), (key, cal[reason])
