"""Body, internal air and the trachea / main bronchi on the coarse grid.

The trachea is found as a small round air region near the body's midline in the upper slices,
present in several consecutive slices; the airway tree is then grown from it by thresholding,
lowering the threshold whenever the grown volume explodes (a leak into lung), and only its thick
part (trachea, main and the largest lobar bronchi) is kept by an opening.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import to_numpy
from ._grid import STRUCT_2D, STRUCT_3D, Grid, bbox, border_labels_2d, dilate, opening

#: Below this (coarse block mean) a voxel is air-like: aerated lung, airway, gas, outside air.
AIR_BELOW_HU = -400.0


@dataclass
class BodyAir:
    body: Any  # coarse bool: the patient (largest non-outside component)
    internal_air: Any  # coarse bool: air-like voxels inside the body
    body_center_x: float  # coarse x index


def body_and_internal_air(xp: Any, ndi: Any, c: Any, pad: Any) -> BodyAir:
    """Outside air is air-like voxels connected, within their slice, to the slice border."""
    air = (c < AIR_BELOW_HU) | pad
    lab, n = ndi.label(air, structure=STRUCT_2D)
    outside_lut = xp.zeros(n + 1, dtype=bool)
    outside_lut[border_labels_2d(xp, lab)] = True
    outside_lut[0] = False
    outside = outside_lut[lab] | pad
    del lab
    lab, n = ndi.label(~outside, structure=STRUCT_3D)
    if n == 0:
        body = xp.zeros_like(outside)
    else:
        sizes = xp.bincount(lab.ravel(), minlength=n + 1)
        sizes[0] = 0
        body = lab == int(xp.argmax(sizes))
    del lab
    internal = air & body & ~pad
    cols = to_numpy(body.sum(axis=(0, 1)))
    cx = float((cols * np.arange(cols.size)).sum() / max(cols.sum(), 1))
    return BodyAir(body=body, internal_air=internal, body_center_x=cx)


@dataclass
class Airway:
    lumen: Any  # coarse bool: trachea + main bronchi lumen (thick part of the grown tree)
    seed_z: int
    center_x: float  # coarse x index of the trachea (the body's midline)
    threshold_hu: float
    grown_ml: float
    carina_z: int | None


def find_trachea_seed(xp: Any, ndi: Any, internal_air: Any, grid: Grid, superior_high: bool,
                      body_center_x: float) -> tuple[int, int] | None:
    """(z, label-in-slice mask id) of the trachea's most superior convincing cross-section.

    Returns the slice index and the 2-D component's centroid x, or None where no trachea shows.
    """
    lab, n = ndi.label(internal_air, structure=STRUCT_2D)
    if n == 0:
        return None
    area_vox = to_numpy(xp.bincount(lab.ravel(), minlength=n + 1))
    px_mm2 = grid.spacing_zyx[1] * grid.spacing_zyx[2]
    area = area_vox * px_mm2
    cand = np.flatnonzero((area >= 40.0) & (area <= 1200.0))
    cand = cand[cand > 0]
    if cand.size == 0:
        return None
    if cand.size > 5000:  # noise specks: keep the biggest
        cand = cand[np.argsort(area[cand])[-5000:]]
    com = np.asarray(ndi.center_of_mass(internal_air, lab, [int(k) for k in cand]), float)
    com = np.atleast_2d(com)
    del lab
    near = np.abs(com[:, 2] - body_center_x) * grid.spacing_zyx[2] <= 40.0
    cand, com = cand[near], com[near]
    if cand.size == 0:
        return None
    zs = np.rint(com[:, 0]).astype(int)
    order = np.argsort(-zs if superior_high else zs)
    need = max(2, int(round(15.0 / grid.spacing_zyx[0])))  # present over ~15 mm of slices
    step = -1 if superior_high else 1
    for i in order:
        z0, x0, y0 = zs[i], com[i, 2], com[i, 1]
        hits = 0
        for k in range(1, need + 1):
            zk = z0 + step * k
            sel = (zs == zk) & (np.hypot((com[:, 2] - x0) * grid.spacing_zyx[2],
                                         (com[:, 1] - y0) * grid.spacing_zyx[1]) <= 10.0)
            hits += bool(sel.any())
        if hits >= need - 1:
            return int(z0), int(cand[i])
    return None


def grow_airway(xp: Any, ndi: Any, c: Any, internal_air: Any, grid: Grid, superior_high: bool,
                body_center_x: float, *, thresholds: tuple[float, ...], max_ml: float,
                thick_radius_mm: float) -> Airway | None:
    """Grow the airway from the trachea seed with leak control; keep its thick part."""
    found = find_trachea_seed(xp, ndi, internal_air, grid, superior_high, body_center_x)
    if found is None:
        return None
    seed_z, _ = found
    lab2, _ = ndi.label(internal_air[seed_z], structure=STRUCT_2D[1])
    # the seed component in its slice: the one nearest the midline with a plausible area
    seed2d = _seed_component(xp, lab2, grid, body_center_x)
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
    thick = opening(xp_ndi := ndi, grown, grid.box(thick_radius_mm))
    lab, n = xp_ndi.label(thick, structure=STRUCT_3D)
    ids = xp.unique(lab[seed_z][seed2d & thick[seed_z]])
    ids = ids[ids > 0]
    lumen = xp.isin(lab, ids) if ids.size else grown & False
    del lab
    # the trachea is the part whose cross-section stays a single blob; the carina is its end
    carina = _carina(xp, ndi, lumen, seed_z, superior_high)
    cx = _centroid_x(xp, lumen[seed_z]) if bool(lumen[seed_z].any()) else body_center_x
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
    """First slice, going down from the seed, where the airway splits into two blobs."""
    box = bbox(xp, lumen)
    if box is None:
        return None
    sub = lumen[box]
    lab, _ = ndi.label(sub, structure=STRUCT_2D)
    lab = to_numpy(lab)
    z0 = box[0].start
    zs = range(sub.shape[0] - 1, -1, -1) if superior_high else range(sub.shape[0])
    for k in zs:
        if len(np.unique(lab[k])) - 1 >= 2:
            return z0 + k
    return None


def airway_exclusion(ndi: Any, lumen: Any, grid: Grid, wall_mm: float) -> Any:
    """The lumen with its wall: what the lung mask must leave out."""
    return dilate(ndi, lumen, grid.box(wall_mm))
