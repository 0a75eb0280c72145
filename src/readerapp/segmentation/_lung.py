"""The lung mask on the coarse grid: air regions inside the body, minus the airway, completed.

Completion keeps what a threshold loses: vessels and lesions inside the lung (a per-lung closing
and per-slice hole filling) and dense pathology against the chest wall or diaphragm (hull-based
completion, see ``_hull``). Each lung is completed on its own so nothing bridges the mediastinum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy
from ._grid import STRUCT_3D, Grid, bbox, closing, erode, holes_2d
from ._hull import complete_side


def lung_components(xp: Any, ndi: Any, air: Any, grid: Grid, superior_high: bool,
                    min_ml: float, core_mm: float = 5.0,
                    min_core_fraction: float = 0.3) -> tuple[Any, list[str]]:
    """Both lungs among the internal air components; bowel gas and specks are dropped.

    A component is lung when it is thick (most of it survives an in-plane erosion of
    ``core_mm``: air sheets between the back and the table or in skin folds do not) and either at
    least a quarter of the largest or at least ``min_ml`` and reaching above the largest one's
    mid-height (gas below the diaphragm never does).
    """
    warnings: list[str] = []
    lab, n = ndi.label(air, structure=STRUCT_3D)
    if n == 0:
        return xp.zeros_like(air), ["no air-containing region inside the body: no lung found"]
    sizes = to_numpy(xp.bincount(lab.ravel(), minlength=n + 1)).astype(float)
    sizes[0] = 0
    core = erode(ndi, air, grid.box(core_mm, in_plane_only=True))
    core_sizes = to_numpy(xp.bincount(lab[core], minlength=n + 1)).astype(float)
    del core
    sizes[core_sizes < min_core_fraction * sizes] = 0
    voxel_ml = grid.coarse_voxel_mm3 / 1000.0
    order = np.argsort(sizes)[::-1][:8]
    order = order[sizes[order] * voxel_ml >= min_ml]
    if order.size == 0:
        return xp.zeros_like(air), ["no air region inside the body is large enough to be lung"]
    largest = int(order[0])
    keep = [largest]
    zl = np.flatnonzero(to_numpy((lab == largest).any(axis=(1, 2))))
    mid = 0.5 * (zl[0] + zl[-1])
    for k in order[1:]:
        if sizes[k] >= 0.25 * sizes[largest]:
            keep.append(int(k))
            continue
        zk = np.flatnonzero(to_numpy((lab == int(k)).any(axis=(1, 2))))
        top = zk[-1] if superior_high else zk[0]
        if (top > mid) if superior_high else (top < mid):
            keep.append(int(k))
    lut = xp.zeros(n + 1, dtype=bool)
    lut[xp.asarray(keep)] = True
    return lut[lab], warnings


def complete_lungs(xp: Any, ndi: Any, lung: Any, c: Any, body: Any, midline_x: float,
                   grid: Grid, *, closing_mm: float, hole_max_mm2: float, hull_max_mm2: float,
                   hull_max_hu: float, pleura_mm: float) -> tuple[Any, dict[str, float]]:
    """Closing + hole filling per lung, then hull completion; returns the mask and side volumes."""
    nx = lung.shape[2]
    xs = xp.arange(nx)[None, None, :]
    px_mm2 = grid.spacing_zyx[1] * grid.spacing_zyx[2]
    out = xp.zeros_like(lung)
    vols: dict[str, float] = {}
    box_close = grid.box(closing_mm)
    margin = tuple(s + 2 for s in box_close)
    pleura_y, pleura_x = grid.voxels(pleura_mm, 1), grid.voxels(pleura_mm, 2)
    for name, sel, lateral_sign in (("low_x", xs < midline_x, -1), ("high_x", xs >= midline_x, 1)):
        side = lung & sel
        vols[name] = float(side.sum()) * grid.coarse_voxel_mm3 / 1000.0
        box = bbox(xp, side, margin)  # type: ignore[arg-type]
        if box is None:
            continue
        s = side[box]
        s = closing(ndi, s, box_close) & body[box]
        s |= holes_2d(xp, ndi, s, hole_max_mm2 / px_mm2)
        # The hull step runs on the host (per-slice geometry on a small cropped mask). Coronal
        # hulls were tried for dependent consolidation and swallowed the liver dome on real CT.
        sh, ch, bh = to_numpy(s), to_numpy(c[box]), to_numpy(body[box])
        sh |= complete_side(sh, ch, bh, lateral_sign, px_mm2, max_area_mm2=hull_max_mm2,
                            max_hu=hull_max_hu, pleura_px=(pleura_y, pleura_x))
        s = xp.asarray(sh)
        s |= holes_2d(xp, ndi, s, hole_max_mm2 / px_mm2)
        out[box] |= s
    return out, vols
