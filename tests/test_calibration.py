"""The calibration check: tracheal air and aortic blood against their expected HU."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from readerapp.calibration import CalibrationResult, calibration_check
from readerapp.errors import LabelMapError
from readerapp.phantom import BLOOD_HU, make_chest_phantom
from readerapp.segmentation import SegmentationResult, get_segmenter
from readerapp.volume import CTVolume


@cache
def case(**kw) -> tuple:
    ph = make_chest_phantom((60, 128, 128), (2.5, 2.5, 3.0), seed=7, **kw)
    return ph, get_segmenter().propose(ph.volume, backend="numpy")


def shifted(volume: CTVolume, offset: int) -> CTVolume:
    """The same scan from a scanner whose calibration is off by ``offset`` HU."""
    hu = volume.hu.astype(np.int32)
    inside = hu > -1500
    hu[inside] += offset
    return CTVolume(hu=np.clip(hu, -3024, 3071).astype(np.int16), spacing=volume.spacing,
                    direction=volume.direction)


def test_phantom_reads_its_true_values():
    ph, seg = case()
    res = calibration_check(ph.volume, seg.labels, seg.extras)
    assert isinstance(res, CalibrationResult)
    assert res.tracheal_air_hu == pytest.approx(-1000, abs=5)
    assert res.aortic_blood_hu == pytest.approx(BLOOD_HU, abs=5)
    assert res.air_voxels > 50 and res.blood_voxels > 50
    assert res.ok and res.warnings == []
    # the disc was found where the phantom's aorta is
    z, y, x, r = res.aorta_track[0]
    assert ph.parts["aorta"][z, int(round(y)), int(round(x))]
    assert 9 <= r <= 20


@pytest.mark.parametrize("offset", [-40, 35])
def test_shifted_calibration_warns_for_air_and_blood(offset):
    ph, seg = case()
    vol = shifted(ph.volume, offset)
    res = calibration_check(vol, seg.labels, seg.extras)
    assert res.tracheal_air_hu == pytest.approx(-1000 + offset, abs=6)
    assert res.aortic_blood_hu == pytest.approx(BLOOD_HU + offset, abs=6)
    assert len(res.warnings) == 2 and not res.ok
    assert "tracheal air" in res.warnings[0] and "aortic blood" in res.warnings[1]


def test_small_shift_is_within_tolerance():
    ph, seg = case()
    res = calibration_check(shifted(ph.volume, 12), seg.labels, seg.extras)
    assert res.warnings == []
    assert res.air_offset_hu == pytest.approx(12, abs=6)


def test_finds_the_trachea_itself_without_extras():
    ph, seg = case()
    vol = shifted(ph.volume, -30)
    res = calibration_check(vol, seg.labels)  # no extras: the check finds the trachea
    assert res.tracheal_air_hu == pytest.approx(-1030, abs=6)
    assert any("tracheal air" in w for w in res.warnings)


def test_no_aorta_visible_gives_none():
    ph, seg = case(mediastinal_fat=False)  # the aorta merges with the mediastinum
    res = calibration_check(ph.volume, seg.labels, seg.extras)
    assert res.aortic_blood_hu is None and res.blood_offset_hu is None
    assert any("no aorta" in n for n in res.notes)
    assert res.tracheal_air_hu == pytest.approx(-1000, abs=5)


def test_contrast_enhanced_aorta_is_reported_not_judged():
    ph, seg = case()
    hu = ph.volume.hu.copy()
    hu[ph.parts["aorta"]] += 250
    vol = CTVolume(hu=hu, spacing=ph.volume.spacing)
    res = calibration_check(vol, seg.labels, seg.extras)
    assert res.contrast_enhanced and res.aortic_blood_hu > 250
    assert res.warnings == [] and any("contrast" in n for n in res.notes)


def test_no_trachea_no_lung():
    vol = CTVolume(hu=np.full((8, 48, 48), 40, np.int16), spacing=(2.0, 2.0, 5.0))
    res = calibration_check(vol, np.zeros(vol.shape, np.uint8),
                            SegmentationResult(np.zeros(vol.shape, np.uint8), {}).extras)
    assert res.tracheal_air_hu is None and res.aortic_blood_hu is None
    assert res.ok and len(res.notes) == 2


def test_to_dict_is_json_and_complete():
    ph, seg = case()
    d = calibration_check(shifted(ph.volume, 30), seg.labels, seg.extras).to_dict()
    text = json.dumps(d)
    back = json.loads(text)
    for key in ("tracheal_air_hu", "aortic_blood_hu", "expected_air_hu", "expected_blood_hu",
                "tolerance_hu", "warnings", "ok", "air_offset_hu", "blood_offset_hu"):
        assert key in back
    assert back["ok"] is False and back["expected_blood_hu"] == [40.0, 50.0]


def test_label_map_on_another_grid_is_refused():
    ph, seg = case()
    with pytest.raises(LabelMapError, match="grid"):
        calibration_check(ph.volume, seg.labels[:-1], seg.extras)


def test_analyze_runs_a_failing_check_once(monkeypatch):
    """A check that cannot run is reported once, not retried by the measuring step."""
    import readerapp.calibration as calibration
    from readerapp.analysis import analyze

    calls = []

    def broken(*args, **kw):
        calls.append(1)
        raise RuntimeError("no trachea")

    class Fixed:
        name, version = "fixed", "0"

        def propose(self, volume, *, backend="auto", progress=None):
            return SegmentationResult(labels=np.ones(volume.shape, np.uint8), provenance={})

    monkeypatch.setattr(calibration, "calibration_check", broken)
    monkeypatch.setattr("readerapp.segmentation.get_segmenter", lambda method: Fixed())
    vol = CTVolume(hu=np.full((4, 100, 100), -800, np.int16), spacing=(2, 2, 2))  # 320 mL
    res = analyze(vol, backend="numpy")
    assert len(calls) == 1
    assert res.calibration is None
    assert [w for w in res.warnings if "calibration" in w] == ["calibration check could not run: no trachea"]
    assert res.endpoints.voxel_counts["lung"] == 40000
