"""Completion of dense lung up to the rib cage: consolidation that fills a lung's whole back.

In severe COVID-19 the dependent lung is consolidated over its whole height: the aerated lung's
posterior border is then flat or convex, so closing, hole filling, the per-slice hull and the
closing along z have no bite to fill. The rib cage still shows where the lung ends. Per slice
and per lung (host NumPy, small crops):

* bone (coarse HU >= ``bone_hu``, inside the body) is binned by angle round the lung's
  centroid and the nearest per angle taken: the slice's own, or where it has none in a
  direction the nearest slice's within ``bone_z_mm`` (ribs are discrete in z: an intercostal
  slice sees its neighbours' ribs); a slice's bone more than ``cage_tolerance_mm`` beyond the
  window's nearest (the scapula behind an intercostal space) gives way to it; gaps of up to
  ``max_gap_deg`` are interpolated and the profile median-filtered;
* the lung's own outer radius per angle is taken the same way; the chest wall's thickness is
  the lower quartile of the lung-to-bone distance over all angles and slices of this lung (at
  least ``min_wall_mm``); the soft tissue (``soft_min_hu`` to ``soft_max_hu``) beyond the lung
  and within the ribs less that thickness is lung, where that is at least ``min_excess_mm``;
* never within ``medial_cone_deg`` of the medial direction (mediastinum, heart, aorta, spine)
  nor beyond ``anterior_limit_deg`` from the lateral one towards the front, and never medial
  to the lung's medial edge in its row (continued along its course beyond the lung's last
  rows); a lung, or slice, whose wall is thicker than ``max_wall_mm`` (no ribs at its pleura,
  an apex) gets nothing;
* only pieces touching the lung in their slice, at least ``min_thickness_mm`` thick, of median
  HU at least ``min_median_hu`` (not extrapleural fat), no more than ``max_added_ratio`` times
  the slice's lung, and ``min_ml`` in 3-D; the caller then keeps only those on the chest wall
  side (``_depth``): an organ dome under the lung base is deeper than the lung.

On the real chest CT without pathology every candidate is dropped (nothing added).
A pleural effusion has the same place and density as dependent consolidation and is added as
well: the reader tells them apart.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.ndimage as sndi

from ._grid import STRUCT_2D, STRUCT_3D


def _fill_circular(r: np.ndarray, max_gap: int) -> np.ndarray:
    """Interpolate NaN runs of a circular profile up to ``max_gap`` bins long (others stay NaN)."""
    n = r.size
    ok = np.isfinite(r)
    if ok.sum() < 2:
        return r
    idx = np.flatnonzero(ok)
    ext_i = np.concatenate([idx - n, idx, idx + n])
    ext_v = np.tile(r[idx], 3)
    out = r.copy()
    for i in np.flatnonzero(~ok):
        j = np.searchsorted(ext_i, i)  # next known bin (the copies wrap round the circle)
        lo_i, hi_i = ext_i[j - 1], ext_i[j]
        if hi_i - lo_i - 1 <= max_gap:
            t = (i - lo_i) / (hi_i - lo_i)
            out[i] = (1 - t) * ext_v[j - 1] + t * ext_v[j]
    return out


def _circ_median(r: np.ndarray, k: int) -> np.ndarray:
    """Circular running median (window 2k+1) that ignores NaN; NaN stays NaN."""
    if k < 1:
        return r
    win = np.stack([np.roll(r, s) for s in range(-k, k + 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
        med = np.nanmedian(win, axis=0)
    return np.where(np.isfinite(r), med, np.nan)


def _medial_limit(s: np.ndarray, lateral_sign: int, k: int) -> np.ndarray:
    """Per row, the lung's medial edge (x) in one slice; beyond the lung's front and back rows.

    Beyond them the edge is carried on, or continued along its course over the last ``k`` rows
    where that course turns laterally (a consolidated back whose lung outline curves round
    to the spine: the carried edge would take the paravertebral tissue and the aorta); never
    more medially than carried.
    """
    ny, nx = s.shape
    rows = s.any(axis=1)
    first = np.where(rows, s.argmax(axis=1), 0)
    last = np.where(rows, nx - 1 - s[:, ::-1].argmax(axis=1), 0)
    edge = (first if lateral_sign > 0 else last).astype(float)
    yi = np.arange(ny)
    have = yi[rows]
    medial = np.interp(yi, have, edge[rows])
    for end, beyond in ((have[-1], yi > have[-1]), (have[0], yi < have[0])):
        seg = have[np.abs(have - end) < k]
        if seg.size < 2 or not beyond.any():
            continue
        slope = np.polyfit(seg.astype(float), edge[seg], 1)[0]
        ext = edge[end] + slope * (yi[beyond] - end)
        medial[beyond] = (np.maximum(medial[beyond], ext) if lateral_sign > 0
                          else np.minimum(medial[beyond], ext))
    return medial


def chest_wall_additions(side: np.ndarray, coarse_hu: np.ndarray, body: np.ndarray,
                         lateral_sign: int, spacing_zyx: tuple[float, float, float], *,
                         bone_hu: float, bone_z_mm: float, soft_min_hu: float,
                         soft_max_hu: float, min_wall_mm: float, max_wall_mm: float,
                         min_excess_mm: float, medial_cone_deg: float,
                         anterior_limit_deg: float = 180.0, min_median_hu: float = -1000.0,
                         min_thickness_mm: float = 0.0, min_ml: float = 0.0,
                         cage_tolerance_mm: float = 8.0, max_added_ratio: float = 2.5,
                         min_lung_mm2: float = 300.0, trend_mm: float = 10.0,
                         n_bins: int = 72, max_gap_deg: float = 40.0,
                         wall_quantile: float = 0.25) -> tuple[np.ndarray, dict[str, Any]]:
    """Soft tissue between one lung and its rib cage, as lung (host bool, same shape).

    ``side`` is the completed mask of one lung on a crop of the coarse grid that reaches well
    past its ribs; ``coarse_hu`` and ``body`` are the same crop. Returns the additions and a few
    figures for the provenance (the lung-to-bone distance found, mm, or None with the reason
    where no bone was found round the lung; the number of slices with additions).
    """
    nz, ny, nx = side.shape
    sz, sy, sx = spacing_zyx
    out = np.zeros_like(side)
    info: dict[str, Any] = {"wall_mm": None, "slices": 0.0,
                            "note": "no bone found round this lung: no ribs at its pleura"}
    bone = (coarse_hu >= bone_hu) & body
    kz = max(0, int(round(bone_z_mm / sz)))
    # the slice's own ribs first, then the nearest slices' for the directions still empty (a
    # projection over the window would put the ribs of a narrower level at the lung's edge)
    dzs = [0] + [d for k in range(1, kz + 1) for d in (-k, k)]
    yy, xx = np.mgrid[:ny, :nx]
    yy_mm, xx_mm = yy * sy, xx * sx
    two_pi = 2.0 * np.pi
    # angle 0 = lateral, +-pi = medial
    medial_ok_cos = -np.cos(np.deg2rad(medial_cone_deg))
    centres = ((np.arange(n_bins) + 0.5) / n_bins) * two_pi - np.pi
    allowed = np.cos(centres) > medial_ok_cos
    allowed &= (centres >= 0) | (centres > -np.deg2rad(anterior_limit_deg))  # y grows backwards
    max_gap = int(round(max_gap_deg / (360.0 / n_bins)))

    def bins_of(dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
        a = np.arctan2(dy, dx * lateral_sign)
        return np.minimum(((a + np.pi) / two_pi * n_bins).astype(np.int64), n_bins - 1)

    per_slice: list[tuple[int, float, float, np.ndarray, np.ndarray, float]] = []
    gaps_all: list[np.ndarray] = []
    for z in range(nz):
        s = side[z]
        if float(s.sum()) * sy * sx < min_lung_mm2:
            continue
        yc, xc = float(yy_mm[s].mean()), float(xx_mm[s].mean())
        ly, lx = yy_mm[s] - yc, xx_mm[s] - xc
        lr = np.hypot(ly, lx)
        rl = np.full(n_bins, -np.inf)
        np.maximum.at(rl, bins_of(ly, lx), lr)
        rb = np.full(n_bins, np.nan)
        near = np.full(n_bins, np.inf)  # nearest bone over the whole window
        for dz in dzs:
            if not 0 <= z + dz < nz:
                continue
            bz = bone[z + dz] & ~s
            if not bz.any():
                continue
            by, bx = yy_mm[bz] - yc, xx_mm[bz] - xc
            bb, br = bins_of(by, bx), np.hypot(by, bx)
            beyond = br > rl[bb]  # the bone must lie beyond the lung's outline in that direction
            r_dz = np.full(n_bins, np.inf)
            np.minimum.at(r_dz, bb[beyond], br[beyond])
            fill = ~np.isfinite(rb) & np.isfinite(r_dz) & allowed
            rb[fill] = r_dz[fill]
            near = np.minimum(near, r_dz)
        # where this slice's first bone lies well beyond the window's (an intercostal space
        # with the scapula behind it), the ribs above and below bound the lung
        far = np.isfinite(rb) & (rb > near + cage_tolerance_mm)
        rb[far] = near[far]
        rb = _circ_median(_fill_circular(rb, max_gap), 2)
        rl = np.where(np.isfinite(rl), rl, np.nan)
        gap = rb - rl
        g = gap[np.isfinite(gap)]
        if g.size < n_bins // 6:
            continue
        q = float(np.quantile(g, wall_quantile))
        per_slice.append((z, yc, xc, rb, rl, q))
        gaps_all.append(g)
    if not per_slice:
        return out, info
    wall_all = float(np.quantile(np.concatenate(gaps_all), wall_quantile))
    info["wall_mm"] = round(wall_all, 1)
    info.pop("note")
    if wall_all > max_wall_mm:
        return out, info  # no ribs at this lung's pleura (or nothing reliable): leave it
    soft = (coarse_hu >= soft_min_hu) & (coarse_hu < soft_max_hu) & body & ~side
    xs = np.arange(nx)
    for z, yc, xc, rb, rl, q in per_slice:
        if q > max_wall_mm:  # this slice's lung lies far from its ribs all round (an apex)
            continue
        wall = max(min_wall_mm, wall_all)
        env = rb - wall
        ok_bin = np.isfinite(env) & np.isfinite(rl) & (env - rl >= min_excess_mm)
        if not ok_bin.any():
            continue
        cand = soft[z]
        if not cand.any():
            continue
        cy, cx = np.nonzero(cand)
        dy, dx = cy * sy - yc, cx * sx - xc
        b = bins_of(dy, dx)
        r = np.hypot(dy, dx)
        hit = ok_bin[b] & (r > rl[b]) & (r <= env[b])
        add = np.zeros_like(cand)
        add[cy[hit], cx[hit]] = True
        if not add.any():
            continue
        s = side[z]
        medial = _medial_limit(s, lateral_sign, max(2, int(round(trend_mm / sy))))
        lateral_of = (xs[None, :] >= medial[:, None]) if lateral_sign > 0 \
            else (xs[None, :] <= medial[:, None])
        add &= lateral_of
        # only what touches the lung in this slice
        lab, n = sndi.label(add, structure=STRUCT_2D[1])
        if n == 0:
            continue
        touch = np.unique(lab[sndi.binary_dilation(s, structure=STRUCT_2D[1]) & (lab > 0)])
        keep = np.zeros(n + 1, bool)
        keep[touch] = True
        keep[0] = False
        if min_median_hu > -1000.0 or min_thickness_mm > 0.0:
            dist = sndi.distance_transform_edt(np.pad(keep[lab], 1), sampling=(sy, sx))[1:-1, 1:-1]
            for k in np.flatnonzero(keep):
                piece = lab == k
                # chest wall fat, not consolidation
                ok = float(np.median(coarse_hu[z][piece])) >= min_median_hu
                # a sliver along the pleura, not a lung's consolidated back
                keep[k] = ok and 2.0 * float(dist[piece].max()) >= min_thickness_mm
        add = keep[lab]
        # more added than there is lung left in the slice: a base or apex whose lung is all
        # dense, or rays from a crescent's centre through an organ; not bounded reliably
        if float(add.sum()) <= max_added_ratio * float(s.sum()):
            out[z] = add
    if min_ml > 0.0 and out.any():  # a lung's consolidated back spans many slices
        lab3, n3 = sndi.label(out, structure=STRUCT_3D)
        vol = np.bincount(lab3.ravel(), minlength=n3 + 1) * (sz * sy * sx / 1000.0)
        big = vol >= min_ml
        big[0] = False
        out = big[lab3]
    info["slices"] = float(out.any(axis=(1, 2)).sum())
    return out, info
