"""The trachea and main bronchi on the coarse grid (body and internal air: ``_body``).

The trachea is found as a small round air region near the body's midline in the upper slices,
present in several consecutive slices; the airway tree is then grown from it by thresholding,
lowering the threshold whenever the grown volume explodes (a leak into lung), and only its thick
part (trachea, main and the largest lobar bronchi) is kept by an opening.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage as sndi

from ..backend import to_numpy
from ._body import AIR_BELOW_HU, BodyAir, body_and_internal_air
from ._grid import STRUCT_2D, STRUCT_3D, Grid, bbox, dilate, dilate_ball, opening

__all__ = ["AIR_BELOW_HU", "Airway", "BodyAir", "airway_exclusion", "body_and_internal_air",
           "carina_index", "find_trachea_seed", "grow_airway"]


@dataclass
class Airway:
    lumen: Any  # coarse bool: trachea + main bronchi lumen (thick part of the grown tree)
    seed_z: int
    center_x: float  # coarse x index of the trachea (the body's midline)
    threshold_hu: float
    grown_ml: float
    carina_z: int | None


def find_trachea_seed(xp: Any, ndi: Any, internal_air: Any, grid: Grid, superior_high: bool,
                      body_center_x: float, *, cut_low_x: bool = False,
                      cut_high_x: bool = False) -> tuple[int, float] | None:
    """The trachea's most superior convincing cross-section in the upper half of the scan.

    A candidate is a 2-D air component of 40-1200 mm^2, near the body's midline, not much
    longer than wide; it must recur, within 10 mm, over the next ~15 mm of slices. Returns the
    slice index and the component's centre x, or None where no trachea shows.

    Where the image edge cuts the body on one side only (``cut_low_x`` / ``cut_high_x``), the
    visible body's centre lies off the midline, away from the cut: the search then reaches from
    40 mm on the uncut side of that centre to the cut edge.
    """
    nz = internal_air.shape[0]
    z0 = nz // 2 if superior_high else 0
    sub = internal_air[z0:] if superior_high else internal_air[: nz - nz // 2]
    lab, n = ndi.label(sub, structure=STRUCT_2D)
    if n == 0:
        return None
    area = to_numpy(xp.bincount(lab.ravel(), minlength=n + 1)).astype(float)
    objs = ndi.find_objects(lab)
    del lab
    sy, sx = grid.spacing_zyx[1], grid.spacing_zyx[2]
    rows = []  # (z, cy, cx) of plausible cross-sections
    for k, sl in enumerate(objs, start=1):
        if sl is None:
            continue
        a = area[k] * sy * sx
        if not 40.0 <= a <= 1200.0:
            continue
        h = (sl[1].stop - sl[1].start) * sy
        w = (sl[2].stop - sl[2].start) * sx
        if max(h, w) > 2.5 * max(min(h, w), 1e-6) or max(h, w) > 50.0:
            continue
        cx = 0.5 * (sl[2].start + sl[2].stop - 1)
        cy = 0.5 * (sl[1].start + sl[1].stop - 1)
        off = (cx - body_center_x) * sx
        if off > 40.0 and not (cut_high_x and not cut_low_x):
            continue
        if off < -40.0 and not (cut_low_x and not cut_high_x):
            continue
        rows.append((sl[0].start + z0, cy, cx))
    if not rows:
        return None
    cand = np.asarray(rows, float)
    zs = cand[:, 0].astype(int)
    order = np.argsort(-zs if superior_high else zs, kind="stable")
    need = max(2, int(round(15.0 / grid.spacing_zyx[0])))  # present over ~15 mm of slices
    step = -1 if superior_high else 1
    for i in order:
        zi, yi, xi = zs[i], cand[i, 1], cand[i, 2]
        hits = 0
        for k in range(1, need + 1):
            sel = (zs == zi + step * k) & (
                np.hypot((cand[:, 2] - xi) * sx, (cand[:, 1] - yi) * sy) <= 10.0)
            hits += bool(sel.any())
        if hits >= need - 1:
            return int(zi), float(xi)
    return None


def grow_airway(xp: Any, ndi: Any, c: Any, internal_air: Any, grid: Grid, superior_high: bool,
                body_center_x: float, *, thresholds: tuple[float, ...], max_ml: float,
                thick_radius_mm: float, cut_low_x: bool = False,
                cut_high_x: bool = False) -> Airway | None:
    """Grow the airway from the trachea seed with leak control; keep its thick part."""
    found = find_trachea_seed(xp, ndi, internal_air, grid, superior_high, body_center_x,
                              cut_low_x=cut_low_x, cut_high_x=cut_high_x)
    if found is None:
        return None
    seed_z, seed_x = found
    lab2, _ = ndi.label(internal_air[seed_z], structure=STRUCT_2D[1])
    # the seed component in its slice: the one nearest the found centre with a plausible area
    seed2d = _seed_component(xp, lab2, grid, seed_x)
    if seed2d is None:
        return None
    voxel_ml = grid.coarse_voxel_mm3 / 1000.0
    chosen = None
    for t in thresholds:
        cand = (c < t) & internal_air
        cand[seed_z] &= seed2d  # enter the tree only through the trachea
        lab, n = ndi.label(cand, structure=STRUCT_3D)
        ids = xp.unique(lab[seed_z][seed2d])
        ids = ids[ids > 0]
        if ids.size == 0:
            continue
        grown = xp.isin(lab, ids)
        del lab
        ml = float(grown.sum()) * voxel_ml
        chosen = (grown, t, ml)
        if ml <= max_ml:
            break
    if chosen is None:
        return None
    grown, t, ml = chosen
    if ml > max_ml:
        # leaking even at the lowest threshold (emphysema, noise): keep only the trachea, a
        # column about the seed's cross-section, rather than remove lung with the "airway"
        column = dilate(ndi, seed2d[None], (1, 2 * grid.voxels(10.0, 1) + 1,
                                             2 * grid.voxels(10.0, 2) + 1))[0]
        grown = grown & column[None]
    thick = opening(ndi, grown, grid.box(thick_radius_mm))
    # every thick piece of the grown tree is airway (the opening may cut the tree where noise
    # narrows it); crumbs under 2 % of the largest piece are dropped
    lab, n = ndi.label(thick, structure=STRUCT_3D)
    if n == 0:
        lumen = xp.zeros_like(grown)
    else:
        sizes = xp.bincount(lab.ravel(), minlength=n + 1)
        sizes[0] = 0
        keep = sizes >= 0.02 * sizes.max()
        keep[0] = False
        lumen = keep[lab]
    del lab
    for _ in range(2):  # give back the lumen's edge that the opening shaved off
        lumen = dilate(ndi, lumen, (3, 3, 3)) & grown
    carina = _carina(xp, ndi, lumen, seed_z, superior_high)
    cx = _centroid_x(xp, lumen.any(axis=0)) if bool(lumen.any()) else body_center_x
    return Airway(lumen=lumen, seed_z=seed_z, center_x=cx, threshold_hu=float(t),
                  grown_ml=ml, carina_z=carina)


def _seed_component(xp: Any, lab2: Any, grid: Grid, body_center_x: float) -> Any | None:
    n = int(lab2.max())
    if n == 0:
        return None
    area = to_numpy(xp.bincount(lab2.ravel(), minlength=n + 1)) * grid.spacing_zyx[1] * grid.spacing_zyx[2]
    xs = to_numpy(xp.bincount(lab2.ravel(), weights=xp.broadcast_to(
        xp.arange(lab2.shape[1], dtype=xp.float64), lab2.shape).ravel(), minlength=n + 1))
    cx = xs / np.maximum(area / (grid.spacing_zyx[1] * grid.spacing_zyx[2]), 1)
    ok = (area >= 40.0) & (area <= 1200.0)
    ok[0] = False
    if not ok.any():
        return None
    dist = np.where(ok, np.abs(cx - body_center_x), np.inf)
    return lab2 == int(np.argmin(dist))


def _centroid_x(xp: Any, mask2d: Any) -> float:
    cols = to_numpy(mask2d.sum(axis=0)).astype(float)
    return float((cols * np.arange(cols.size)).sum() / max(cols.sum(), 1.0))


def _carina(xp: Any, ndi: Any, lumen: Any, seed_z: int, superior_high: bool) -> int | None:
    box = bbox(xp, lumen)
    if box is None:
        return None
    sub = to_numpy(lumen[box])
    k = carina_index(sub, superior_high)
    return None if k is None else box[0].start + k


def carina_index(lumen: np.ndarray, superior_high: bool) -> int | None:
    """Slice where the trachea divides: going down, after a single-blob trachea has been seen,
    the first slice holding two blobs that are each at least a fifth of the trachea's area.

    Works on a host bool (z, y, x) airway mask; None where the division is not seen.
    """
    lab, _ = sndi.label(lumen, structure=STRUCT_2D)
    zs = range(lumen.shape[0] - 1, -1, -1) if superior_high else range(lumen.shape[0])
    trachea_area = 0.0
    for z in zs:
        areas = np.bincount(lab[z].ravel())[1:]
        areas = np.sort(areas[areas > 0])[::-1]
        if areas.size == 0:
            if trachea_area:
                break
            continue
        if trachea_area and areas.size >= 2 and areas[1] >= 0.2 * trachea_area:
            return int(z)
        if areas.size == 1 or areas[1] < 0.2 * areas[0]:
            trachea_area = trachea_area if trachea_area else max(trachea_area, float(areas[0]))
    return None


def airway_exclusion(xp: Any, ndi: Any, lumen: Any, grid: Grid, wall_mm: float) -> Any:
    """The lumen with its wall: what the lung mask must leave out.

    The wall is round (a ball of ``wall_mm``, :func:`._grid.dilate_ball`): it follows the
    bronchus into the hilum. A box dilation (up to 1.3) cut rectangular notches into the lung
    outline there, its corners reaching up to 1.7 times the wall's thickness into the lung, and
    flat slabs beyond where the main bronchi end.
    """
    return dilate_ball(xp, ndi, lumen, grid, wall_mm)
