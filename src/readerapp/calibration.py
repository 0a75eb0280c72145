"""The calibration check of PROTOCOL.md: tracheal air and aortic blood against their known HU.

A scanner whose calibration has drifted moves voxels across the -750 / -300 / 50 HU bins, so the
lesion percentages silently change. Air in the trachea should read about -1000 HU and unenhanced
aortic blood +40 to +50 HU; a warning is raised when either is more than ``tolerance_hu`` off.

Tracheal air is the median HU in the trachea / main-bronchi lumen eroded by ~1.5 mm in-plane
(away from the wall's partial volume), taken from the segmentation's ``extras["trachea"]`` or
found here with the same airway finder. Aortic blood is looked for at and below the carina as a
round 18-40 mm soft-tissue (or contrast-filled) disc in the mediastinum, mostly surrounded by
something else (fat, lung, bone), found in at least two slices along one track; it is ``None``
when no such disc is found. A contrast-enhanced aorta (above 120 HU) is reported but not judged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from .errors import LabelMapError
from .labels import PADDING_BELOW_HU
from .volume import CTVolume

EXPECTED_AIR_HU = -1000.0
EXPECTED_BLOOD_HU = (40.0, 50.0)
TOLERANCE_HU = 20.0
#: Above this the aorta holds contrast medium and says nothing about calibration.
CONTRAST_ABOVE_HU = 120.0


@dataclass
class CalibrationResult:
    tracheal_air_hu: float | None
    aortic_blood_hu: float | None
    air_voxels: int = 0
    blood_voxels: int = 0
    contrast_enhanced: bool = False
    expected_air_hu: float = EXPECTED_AIR_HU
    expected_blood_hu: tuple[float, float] = EXPECTED_BLOOD_HU
    tolerance_hu: float = TOLERANCE_HU
    #: Where the aorta was measured: list of (slice, row, column, radius mm).
    aorta_track: list[tuple[int, float, float, float]] = field(default_factory=list)
    #: Which part of the aorta was sampled ("descending", "ascending or arch") and the phase
    #: its HU shows ("non-contrast", "contrast-enhanced"); None where not measured.
    aorta_segment: str | None = None
    blood_phase: str | None = None
    #: Why a sample could not be taken (None where it was).
    air_not_measured_because: str | None = None
    blood_not_measured_because: str | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def air_offset_hu(self) -> float | None:
        return None if self.tracheal_air_hu is None else self.tracheal_air_hu - self.expected_air_hu

    @property
    def blood_offset_hu(self) -> float | None:
        """Distance from the expected blood range (0 inside it); None when not measured."""
        if self.aortic_blood_hu is None or self.contrast_enhanced:
            return None
        lo, hi = self.expected_blood_hu
        v = self.aortic_blood_hu
        return v - hi if v > hi else (v - lo if v < lo else 0.0)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["expected_blood_hu"] = list(self.expected_blood_hu)
        d["aorta_track"] = [list(t) for t in self.aorta_track]
        d["air_offset_hu"] = self.air_offset_hu
        d["blood_offset_hu"] = self.blood_offset_hu
        d["ok"] = self.ok
        return d


def calibration_check(volume: CTVolume, labels: np.ndarray,
                      extras: dict[str, np.ndarray] | None = None) -> CalibrationResult:
    """Measure tracheal air and aortic blood and warn when either is off by more than 20 HU."""
    hu = volume.hu
    if labels.shape != hu.shape:
        raise LabelMapError(
            f"label map shape {labels.shape} differs from the CT's {hu.shape}: "
            "use a label map on the series' own grid")
    trachea = None if extras is None else extras.get("trachea")
    if trachea is None or not trachea.any():
        trachea = _find_trachea(volume)
    superior_high = volume.direction[8] >= 0.0
    carina = _carina_slice(trachea, superior_high)
    air, n_air = _tracheal_air(volume, _intrathoracic(trachea, carina, superior_high,
                                                      volume.spacing[2]))
    # a miscalibrated scanner shifts blood like air: look for it where it should then read
    shift = 0.0 if air is None else float(np.clip(air - EXPECTED_AIR_HU, -100.0, 100.0))
    blood, n_blood, track, segment, why_blood = _aortic_blood(volume, labels > 0, carina,
                                                              superior_high, shift)
    res = CalibrationResult(tracheal_air_hu=air, aortic_blood_hu=blood, air_voxels=n_air,
                            blood_voxels=n_blood, aorta_track=track, aorta_segment=segment or None)
    if air is None:
        res.air_not_measured_because = (
            "no trachea found (a round air column near the midline over 15 mm of the upper "
            "slices): the scan may start below the carina or the trachea is collapsed")
        res.notes.append("no trachea found: tracheal air not measured")
    elif abs(air - EXPECTED_AIR_HU) > TOLERANCE_HU:
        res.warnings.append(
            f"tracheal air reads {air:.0f} HU, {air - EXPECTED_AIR_HU:+.0f} HU from the expected "
            f"{EXPECTED_AIR_HU:.0f} HU: the scanner calibration may be off and lesion bins shifted")
    if blood is None:
        res.blood_not_measured_because = why_blood
        res.notes.append(f"no aorta found: aortic blood not measured ({why_blood})")
    elif blood - shift > CONTRAST_ABOVE_HU:
        res.contrast_enhanced = True
        res.blood_phase = "contrast-enhanced"
        res.notes.append(f"{segment} aorta reads {blood:.0f} HU: contrast-enhanced, not used "
                         "for calibration")
    else:
        res.blood_phase = "non-contrast"
        off = res.blood_offset_hu
        if off is not None and abs(off) > TOLERANCE_HU:
            res.warnings.append(
                f"aortic blood reads {blood:.0f} HU, {off:+.0f} HU outside the expected "
                f"{EXPECTED_BLOOD_HU[0]:.0f} to {EXPECTED_BLOOD_HU[1]:.0f} HU: the scanner "
                "calibration may be off and lesion bins shifted")
    return res


def _find_trachea(volume: CTVolume) -> np.ndarray:
    """The airway lumen found by the segmentation's own airway finder (NumPy)."""
    from .segmentation._airway import body_and_internal_air, grow_airway
    from .segmentation._grid import choose_grid, downsample, upsample
    from .segmentation.classical import ClassicalParameters

    p = ClassicalParameters()
    grid = choose_grid(volume.shape, volume.spacing_zyx, p.coarse_inplane_mm, p.coarse_z_mm)
    c, pad = downsample(np, volume.hu, grid)
    ba = body_and_internal_air(np, ndi, c, pad, min_enclosed_fraction=p.min_enclosed_fraction,
                               min_group_fraction=p.min_group_fraction,
                               min_cut_contact=p.min_cut_contact)
    aw = grow_airway(np, ndi, c, ba.internal_air, grid, volume.direction[8] >= 0.0,
                     ba.body_center_x, thresholds=p.airway_thresholds_hu, max_ml=p.airway_max_ml,
                     thick_radius_mm=p.airway_thick_radius_mm,
                     cut_low_x=ba.cut_low_x, cut_high_x=ba.cut_high_x)
    if aw is None:
        return np.zeros(volume.shape, bool)
    return upsample(np, aw.lumen, grid) & (volume.hu < -500) & (volume.hu >= PADDING_BELOW_HU)


def _intrathoracic(trachea: np.ndarray, carina: int | None, superior_high: bool,
                   sz: float, length_mm: float = 50.0) -> np.ndarray:
    """The trachea over ``length_mm`` above the carina: below the thoracic inlet, whose
    shoulders raise air values by streaks, and above the bronchi's partial volume."""
    if carina is None:
        return trachea
    n = max(1, int(round(length_mm / sz)))
    out = np.zeros_like(trachea)
    if superior_high:
        sl = slice(carina + 1, min(trachea.shape[0], carina + 1 + n))
    else:
        sl = slice(max(0, carina - n), carina)
    out[sl] = trachea[sl]
    return out if out.any() else trachea


def _tracheal_air(volume: CTVolume, trachea: np.ndarray, wall_mm: float = 2.5
                  ) -> tuple[float | None, int]:
    """Median HU of the lumen at least ``wall_mm`` (in-plane) from the tracheal wall, whose
    partial volume and streaks would pull the air value up; the whole lumen where it is too
    narrow for that."""
    if not trachea.any():
        return None, 0
    sx, sy, _ = volume.spacing
    box = ndi.find_objects(trachea.astype(np.uint8))[0]
    sub = trachea[box]
    core = np.zeros_like(sub)
    for k in range(sub.shape[0]):
        if sub[k].any():
            core[k] = ndi.distance_transform_edt(sub[k], sampling=(sy, sx)) >= wall_mm
    if core.sum() < 10:
        core = sub
    vals = volume.hu[box][core]
    return float(np.median(vals)), int(vals.size)


def _carina_slice(trachea: np.ndarray, superior_high: bool) -> int | None:
    """Slice of the carina (None without a visible division)."""
    from .segmentation._airway import carina_index

    return carina_index(trachea, superior_high)


def _aortic_blood(volume: CTVolume, lung: np.ndarray, carina: int | None, superior_high: bool,
                  shift: float = 0.0) -> tuple[float | None, int, list[tuple[int, float, float, float]],
                                               str, str | None]:
    """Median HU of the aorta's central disc over a consistent vertical track of slices.

    Returns (median HU, voxels, track, segment, reason): ``segment`` says which part of the
    aorta the track is ("descending": beside the spine on the patient's left, behind the
    mediastinum's middle; else "ascending or arch"); ``reason`` says why nothing was found.
    The descending aorta is preferred: it is a round tube over the whole chest, lined by fat
    and the left lung, on non-contrast and contrast scans alike.
    """
    hu = volume.hu
    sx, sy, sz = volume.spacing
    nz = hu.shape[0]
    lz = np.flatnonzero(lung.any(axis=(1, 2)))
    if lz.size == 0:
        return None, 0, [], "", "no lung in the label map: the mediastinum cannot be located"
    step = -1 if superior_high else 1
    start = carina if carina is not None else int(lz[len(lz) // 3] if not superior_high
                                                   else lz[2 * len(lz) // 3])
    n_slices = max(2, int(round(120.0 / sz)))
    zlist = [z for z in range(start, start + step * n_slices, step) if 0 <= z < nz]
    zlist = [z for z in zlist[:: max(1, int(round(5.0 / sz)))] if lung[z].any()]
    if len(zlist) < 2:
        return None, 0, [], "", ("the scan shows fewer than two lung slices at or below the "
                                 "carina, where the aorta is looked for")
    left_sign = 1.0 if volume.direction[0] >= 0 else -1.0  # +x is the patient's left in LPS
    found: list[list[tuple[int, float, float, float, float]]] = []
    for z in zlist:
        found.append([(z, *d) for d in _round_discs(hu[z], lung[z], (sy, sx), shift)])
    if not any(found):
        return None, 0, [], "", (
            "no round blood- or contrast-density disc 18-40 mm wide, mostly lined by fat or "
            f"lung, in the mediastinum over {len(zlist)} slices from the carina down (the aorta "
            "may abut other soft tissue with no fat between)")
    best_track: list[tuple[int, float, float, float, float]] = []
    best_score = -1.0
    for i, cands in enumerate(found):
        for c0 in cands:
            track = [c0]
            for later in found[i + 1:]:
                last = track[-1]
                near = [f for f in later
                        if np.hypot((f[1] - last[1]) * sy, (f[2] - last[2]) * sx) <= 10.0]
                if not near:
                    continue
                track.append(max(near, key=lambda f: f[4]))
            desc = _is_descending(track, lung, left_sign)
            score = len(track) + (1.5 if desc else 0.0) + float(np.mean([t[4] for t in track]))
            if len(track) >= 2 and score > best_score:
                best_track, best_score = track, score
    if len(best_track) < 2:
        return None, 0, [], "", ("round blood-density discs were seen in single slices only, "
                                 "never along a vertical track as the aorta runs")
    vals = []
    yy, xx = np.ogrid[: hu.shape[1], : hu.shape[2]]
    for z, y, x, r_mm, _ in best_track:
        rr = 0.6 * r_mm
        disc = ((yy - y) * sy) ** 2 + ((xx - x) * sx) ** 2 <= rr * rr
        vals.append(hu[z][disc])
    v = np.concatenate(vals)
    track_out = [(int(z), float(y), float(x), float(r)) for z, y, x, r, _ in best_track]
    segment = "descending" if _is_descending(best_track, lung, left_sign) else "ascending or arch"
    return float(np.median(v)), int(v.size), track_out, segment, None


def _is_descending(track: list[tuple[int, float, float, float, float]], lung: np.ndarray,
                   left_sign: float) -> bool:
    """A track on the patient's left of the lungs' midline and behind their middle row."""
    z = track[len(track) // 2][0]
    ys, xs = np.nonzero(lung[z])
    if ys.size == 0:
        return False
    mid_x = 0.5 * (xs.min() + xs.max())
    mid_y = 0.5 * (ys.min() + ys.max())
    y = float(np.mean([t[1] for t in track]))
    x = float(np.mean([t[2] for t in track]))
    return (x - mid_x) * left_sign > 0 and y > mid_y


def _round_discs(sl: np.ndarray, lung2d: np.ndarray, spacing_yx: tuple[float, float],
                 shift: float = 0.0, min_outside: float = 0.5
                 ) -> list[tuple[float, float, float, float]]:
    """Round 18-40 mm blood- or contrast-density discs between the lungs, mostly lined by
    something else (fat, lung, bone): (row, column, radius mm, share of the lining that is
    not blood-like) for each."""
    sy, sx = spacing_yx
    # search the mediastinum: the lungs' bounding rows, the columns between the lungs' centres
    cols = np.flatnonzero(lung2d.any(axis=0))
    rows = np.flatnonzero(lung2d.any(axis=1))
    mid = 0.5 * (cols[0] + cols[-1])
    w = lung2d.sum(axis=0).astype(float)
    xs = np.arange(w.size)
    left, right = xs < mid, xs >= mid
    if w[left].sum() == 0 or w[right].sum() == 0:
        return []
    x0 = int((w[left] * xs[left]).sum() / w[left].sum())
    x1 = int((w[right] * xs[right]).sum() / w[right].sum()) + 1
    y0, y1 = rows[0], rows[-1] + 1
    sub = sl[y0:y1, x0:x1].astype(np.float32)
    w = np.array([0.25, 0.5, 0.25], np.float32)
    sub = ndi.correlate1d(ndi.correlate1d(sub, w, axis=0), w, axis=1)
    lsub = lung2d[y0:y1, x0:x1]
    out: list[tuple[float, float, float, float]] = []
    # blood-like (above fat, shifted like the tracheal air) or contrast-filled
    for lo, hi in ((-25.0 + shift, CONTRAST_ABOVE_HU + shift), (CONTRAST_ABOVE_HU + shift, 600.0)):
        cand = (sub >= lo) & (sub < hi) & ~lsub
        if cand.sum() < 20:
            continue
        edt = ndi.distance_transform_edt(cand, sampling=(sy, sx))
        peaks = (edt == ndi.maximum_filter(edt, size=max(3, int(10.0 / min(sy, sx))))) & \
            (edt >= 9.0) & (edt <= 20.0)
        for y, x in np.argwhere(peaks):
            r = float(edt[y, x])
            # the ring just outside the inscribed disc must be mostly something else
            yy, xx = np.ogrid[: cand.shape[0], : cand.shape[1]]
            d = np.hypot((yy - y) * sy, (xx - x) * sx)
            ring = (d >= r + 1.5) & (d <= r + 4.0)
            if ring.sum() == 0:
                continue
            outside = 1.0 - float(cand[ring].mean())
            if outside >= min_outside:
                out.append((float(y + y0), float(x + x0), r, outside))
    return out
