"""Hull-based completion of lung that lost dense pleural pathology (host NumPy + SciPy).

A consolidation against the chest wall or diaphragm is soft-tissue dense, so a threshold mask
shows a bite in the lung's outline there. Per slice and per lung, the bite lies between the lung
and the chord of its convex hull. Hull defects are added back only when they are

* not medial to the aerated lung in their image row (that is the heart and mediastinum), and
  mostly lateral as a whole (a row-wise medial cut through the liver dome is not a bite),
* not bone (coarse HU below ``max_hu``) and inside the body, and
* small in area (a liver dome seen through the lung base, or the heart in the cardiac notch,
  is larger than ``max_area_mm2``).

The chord undercuts the convex pleura slightly; accepted defects are therefore widened by
``pleura_mm`` outwards (within the lung's hull widened by the same distance).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as sndi
from scipy.spatial import ConvexHull, QhullError

from ._grid import STRUCT_2D


def _hull_rows(pts_yx: np.ndarray, ny: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per row, the [lo, hi] x-span of the convex hull of the points (NaN where empty)."""
    try:
        hull = ConvexHull(pts_yx)
    except (QhullError, ValueError):
        return None
    v = pts_yx[hull.vertices]
    v2 = np.roll(v, -1, axis=0)
    rows = np.arange(ny, dtype=float)[:, None]
    y0, x0, y1, x1 = v[:, 0][None], v[:, 1][None], v2[:, 0][None], v2[:, 1][None]
    lo_y, hi_y = np.minimum(y0, y1), np.maximum(y0, y1)
    inside = (rows >= lo_y) & (rows <= hi_y)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y1 != y0, (rows - y0) / (y1 - y0), 0.0)
    xi = x0 + t * (x1 - x0)
    flat = (y1 == y0) & inside
    xlo = np.where(inside, np.where(flat, np.minimum(x0, x1), xi), np.inf).min(axis=1)
    xhi = np.where(inside, np.where(flat, np.maximum(x0, x1), xi), -np.inf).max(axis=1)
    return xlo, xhi


def hull_defects(side: np.ndarray, lateral_sign: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice convex-hull defects of one lung: (all of them, those not medial to the lung).

    ``side`` is a (z, y, x) bool mask of one lung; ``lateral_sign`` is +1 when the lung's lateral
    side is towards larger x. The medial limit is taken row by row, so it can cut a straight
    edge through an organ inside the hull; :func:`complete_side` uses the uncut defects to see
    that.
    """
    nz, ny, nx = side.shape
    out = np.zeros_like(side)
    full = np.zeros_like(side)
    xs = np.arange(nx)
    any_row: np.ndarray = np.asarray(side.any(axis=2))
    first = np.where(any_row, side.argmax(axis=2), -1)
    last = np.where(any_row, nx - 1 - side[:, :, ::-1].argmax(axis=2), -1)
    for z in range(nz):
        rows = np.flatnonzero(any_row[z])
        if rows.size < 3:
            continue
        pts = np.concatenate([
            np.stack([rows, first[z, rows]], 1), np.stack([rows, last[z, rows]], 1),
        ]).astype(float)
        spans = _hull_rows(pts, ny)
        if spans is None:
            continue
        xlo, xhi = spans
        # medial limit per row: the lung's medial-most pixel, carried to rows without lung
        medial = (first[z] if lateral_sign > 0 else last[z]).astype(float)
        have = any_row[z]
        if not have.any():
            continue
        yi = np.arange(ny)
        medial = np.interp(yi, yi[have], medial[have])
        in_hull = ((xs[None, :] >= np.ceil(xlo - 1e-6)[:, None])
                   & (xs[None, :] <= np.floor(xhi + 1e-6)[:, None]))
        full[z] = in_hull & ~side[z]
        if lateral_sign > 0:
            lo = np.maximum(xlo, medial)
            hi = xhi
        else:
            lo = xlo
            hi = np.minimum(xhi, medial)
        m = (xs[None, :] >= np.ceil(lo - 1e-6)[:, None]) & (xs[None, :] <= np.floor(hi + 1e-6)[:, None])
        out[z] = m & ~side[z]
    return out, full


def _main_parts(side: np.ndarray, min_fraction: float = 0.1) -> np.ndarray:
    """The side's mask without slivers under ``min_fraction`` of its largest piece per slice.

    Where the lungs touch, the midline split leaves bits of the other lung on this side; a hull
    through them would swallow the mediastinum between the lungs.
    """
    lab, n = sndi.label(side, structure=STRUCT_2D)
    if n <= 1:
        return side
    area = np.bincount(lab.ravel(), minlength=n + 1)
    area[0] = 0
    zs = np.zeros(n + 1, int)
    for k, sl in enumerate(sndi.find_objects(lab), start=1):
        if sl is not None:
            zs[k] = sl[0].start
    best = np.zeros(side.shape[0], float)
    np.maximum.at(best, zs[1:], area[1:])
    keep = area >= min_fraction * best[zs]
    keep[0] = False
    return keep[lab]


def complete_side(side: np.ndarray, coarse_hu: np.ndarray, body: np.ndarray, lateral_sign: int,
                  px_mm2: float, *, max_area_mm2: float, max_hu: float,
                  pleura_px: tuple[int, int], min_bite_mm2: float = 50.0,
                  min_lateral_fraction: float = 0.5) -> np.ndarray:
    """Accepted hull defects of one lung (bool, same shape).

    Works on any stack of planes whose last axis is the medial-lateral (x) axis: axial slices
    (z, y, x) or coronal ones (y, z, x). ``pleura_px`` is the widening in (rows, columns).
    """
    d, full = hull_defects(_main_parts(side), lateral_sign)
    ok_tissue = (coarse_hu < max_hu) & body
    d &= ok_tissue
    if not d.any():
        return d
    # A defect the medial limit cut out of a larger one is a slab of an organ (the liver dome
    # inside a lung base's C-shaped outline), not a bite: most of a bite lies lateral.
    full &= ok_tissue
    flab, fn = sndi.label(full, structure=STRUCT_2D)
    full_area = np.bincount(flab.ravel(), minlength=fn + 1)
    lateral_area = np.bincount(flab[d], minlength=fn + 1)
    whole = lateral_area >= min_lateral_fraction * np.maximum(full_area, 1)
    whole[0] = False
    d &= whole[flab]
    lab, n = sndi.label(d, structure=STRUCT_2D)
    area = np.bincount(lab.ravel(), minlength=n + 1) * px_mm2
    ok = area <= max_area_mm2
    ok[0] = False
    d = ok[lab]
    # only real bites are widened, not the one-pixel jags of a noisy outline
    big = ok & (area >= min_bite_mm2)
    if max(pleura_px) > 0 and big[1:].any():
        st = np.zeros((1, 2 * pleura_px[0] + 1, 2 * pleura_px[1] + 1), bool)
        st[0] = True
        grown = sndi.binary_dilation(big[lab], structure=st)
        within = sndi.binary_dilation(side | d, structure=st)
        d = grown & within & ~side & (coarse_hu < max_hu) & body
    return d
