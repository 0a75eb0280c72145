"""Which dense additions to a lung lie on its chest-wall side: depth below the body surface.

Hull completion and the closing along z add dense tissue that the aerated lung's outline says
was lung. Dense pathology against the pleura lies *outside* the aerated lung, between it and the
chest wall: nearer the body surface than the aerated lung it borders. An organ bulging into the
lung from inside the body lies the other way round: the liver or spleen dome, seen at the lung
base as a region ringed by a crescent of lung in the posterior recess or with lung behind it, is
*deeper* below the body surface than that lung. So each 2-D piece of added tissue is kept only
when its mean in-plane depth (distance to outside the body) is not larger than the mean depth
of the lung bordering it (plus ``tolerance_mm``); a piece that borders no lung in its slice is
dropped.

The depth is a per-slice Euclidean distance transform of the body on a half-resolution copy of
the coarse grid, computed on the host (a few milliseconds per slice).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.ndimage as sndi

from ..backend import to_numpy
from ._grid import STRUCT_2D, Grid


class BodyDepth:
    """In-plane distance (mm) from each coarse voxel to outside the body, slice by slice.

    Computed on the host on demand (only slices that hold additions), on a half-resolution
    copy of the slice, and remembered; outside the body it is 0. The image edge counts as
    outside the body.
    """

    def __init__(self, body: Any, grid: Grid) -> None:
        self._body = to_numpy(body)
        self._mm = (2 * grid.spacing_zyx[1], 2 * grid.spacing_zyx[2])
        self.depth = np.zeros(self._body.shape, np.float32)
        self._done = np.zeros(self._body.shape[0], bool)

    def crop(self, box: tuple[slice, ...]) -> np.ndarray:
        """The depth inside ``box`` (z, y, x slices), computing the slices it needs."""
        ny, nx = self._body.shape[1:]
        for z in range(box[0].start, box[0].stop):
            if self._done[z]:
                continue
            self._done[z] = True
            b = self._body[z]
            half = b[::2, ::2]
            if not half.any():
                continue
            # the image edge counts as outside: where the field of view cuts the body, the
            # surface lies beyond it (and a slice the body fills has no other outside at all)
            d = sndi.distance_transform_edt(np.pad(half, 1), sampling=self._mm)[1:-1, 1:-1]
            d = d.astype(np.float32)
            # the half-resolution copy may reach one voxel past the body's edge
            self.depth[z] = np.repeat(np.repeat(d, 2, axis=0), 2, axis=1)[:ny, :nx] * b
        return self.depth[box]


def body_depth_mm(body: Any, grid: Grid, z_range: slice) -> np.ndarray:
    """Host float32 (z, y, x) depth below the body surface (mm) for the slices ``z_range``."""
    d = BodyDepth(body, grid)
    nz, ny, nx = d.depth.shape
    d.crop((z_range, slice(0, ny), slice(0, nx)))
    return d.depth


def keep_outer_additions(xp: Any, ndi: Any, add: Any, lung: Any, depth: Any, *,
                         ring_px: int = 2, tolerance_mm: float = 0.0) -> Any:
    """The 2-D pieces of ``add`` that are no deeper below the body surface than their lung.

    ``add`` (bool) is tissue proposed as lung, ``lung`` (bool, disjoint) the lung it was proposed
    for, ``depth`` (float32, same backend) the in-plane depth below the body surface in mm. The
    lung compared is the lung within ``ring_px`` voxels of the piece in its slice.
    """
    lab, n = ndi.label(add, structure=STRUCT_2D)
    if n == 0:
        return add
    lab = lab.astype(xp.int32)
    # each lung voxel next to a piece takes that piece's label (the largest where two meet)
    size = (1, 2 * ring_px + 1, 2 * ring_px + 1)
    near = ndi.maximum_filter(lab, size=size, mode="constant", cval=0)
    ring = lung & ~add & (near > 0)
    flat = lab.ravel()
    cnt = xp.bincount(flat, minlength=n + 1).astype(xp.float64)
    dsum = xp.bincount(flat, weights=depth.ravel().astype(xp.float64), minlength=n + 1)
    rl = near[ring]
    rcnt = xp.bincount(rl, minlength=n + 1).astype(xp.float64)
    rsum = xp.bincount(rl, weights=depth[ring].astype(xp.float64), minlength=n + 1)
    keep = (rcnt > 0) & (dsum <= (rsum / xp.maximum(rcnt, 1.0) + tolerance_mm) * cnt)
    keep[0] = False
    return keep[lab]

