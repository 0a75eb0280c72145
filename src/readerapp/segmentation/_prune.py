"""The completed lung mask's additions pruned of what no lung looks like.

Completion (closing, hole filling, hull, closing along z, chest wall) adds dense tissue that the
aerated lung's outline says was lung. Three shapes it can leave are not lung, and each was seen
on a real 1.25 mm COVID-19 scan:

* a **slab in an organ's dome**: where a slice cuts the top of the liver (or spleen) dome, the
  lung base rings it and hole filling takes the dome's cap for a lesion inside the lung. Lung
  really enclosed in-plane by lung (a consolidation, a large vessel) has lung under it at its
  lowest slice; an organ rising from below has none. So an added piece that lung encloses
  in-plane is kept only where the mask one slice further down (inferior) holds at least
  ``min_support`` of it, swept upwards from the lung base so a dome loses every slice;
* **lines one coarse voxel thin** in-plane (a hull's pleural widening cut off from its bite, a
  strip along the heart's border): additions that an in-plane 3 x 3 opening of the mask
  removes are dropped (the aerated lung is never touched, so thin lung stays);
* **one-slice pieces** on thin-slice scans: an addition with mask neither above nor below it
  (same column) is a single slice thick, where slices are thinner than ``max_single_mm``;
  pathology is thicker than one such slice. On thick slices a single slice is real tissue.

Whatever then holds no aerated lung in 3-D (an island left behind) is dropped.
NumPy and CuPy run this same code (``xp``/``ndi``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy
from ._grid import STRUCT_2D, STRUCT_3D, Grid, bbox, dilate, opening


def enclosed_pieces(xp: Any, ndi: Any, added: Any, mask: Any) -> tuple[Any, Any, int]:
    """2-D pieces of ``added`` (labelled per slice) and which of them ``mask`` rings in-plane:
    every in-plane neighbour of the piece (3 x 3) lies in ``mask``, and the piece does not
    touch the slice's edge (what lies beyond is unknown). Returns (labels, bool per label,
    count)."""
    lab, n = ndi.label(added, structure=STRUCT_2D)
    if n == 0:
        return lab, xp.zeros(1, dtype=bool), 0
    leaky = added & dilate(ndi, ~mask, (1, 3, 3))
    for ax in (1, 2):
        for i in (0, -1):
            idx: list[Any] = [slice(None)] * 3
            idx[ax] = i
            leaky[tuple(idx)] |= added[tuple(idx)]
    ringed = xp.bincount(lab[leaky], minlength=n + 1) == 0
    ringed[0] = False
    return lab, ringed, n


def drop_domes(xp: Any, ndi: Any, mask: Any, aerated: Any, superior_high: bool,
               min_support: float = 0.5) -> Any:
    """``mask`` without the added pieces it rings in-plane that have less than ``min_support``
    of their area on mask in the slice below; swept from the inferior end upwards, so every
    slice of a dome loses its support in turn (the slice under its lowest ringed slice is the
    organ, not lung). A piece in the scan's lowest slice is kept: what lies under it is
    unknown."""
    added = mask & ~aerated
    if not bool(added.any()):
        return mask
    box = bbox(xp, added, (0, 1, 1))
    assert box is not None
    z0, ys, xs = box[0].start, box[1], box[2]
    lab, ringed, n = enclosed_pieces(xp, ndi, added[box], mask[box])
    if n == 0 or not bool(ringed.any()):
        return mask
    out = mask.copy()
    sizes = xp.bincount(lab.ravel(), minlength=n + 1)
    zs = np.flatnonzero(to_numpy(xp.any(ringed[lab], axis=(1, 2))))
    order = zs if superior_high else zs[::-1]  # inferior first
    step = -1 if superior_high else 1  # towards the slice below
    nz = mask.shape[0]
    for k in order:
        z = int(k) + z0
        zb = z + step
        lz = lab[k]
        if not 0 <= zb < nz:
            continue  # the scan ends under it: what lies below is unknown
        on = xp.bincount(lz[out[zb, ys, xs]], minlength=n + 1)
        drop = (ringed & (on < min_support * sizes))[lz]
        if bool(drop.any()):
            out[z, ys, xs] &= ~drop
    return out


def prune_additions(xp: Any, ndi: Any, mask: Any, aerated: Any, grid: Grid,
                    superior_high: bool | None, *, min_support: float = 0.5,
                    max_single_mm: float = 3.0) -> Any:
    """The lung mask ``mask`` (coarse bool) without the additions to ``aerated`` (the lung's
    air-like components) that are no lung: see the module's docstring."""
    if superior_high is not None:
        mask = drop_domes(xp, ndi, mask, aerated, superior_high, min_support)
    added = mask & ~aerated
    if not bool(added.any()):
        return mask
    drop = added & ~opening(ndi, mask, (1, 3, 3))
    if mask.shape[0] > 1 and grid.spacing_zyx[0] < max_single_mm:
        above = xp.zeros_like(mask)
        below = xp.zeros_like(mask)
        above[:-1] = mask[1:]
        below[1:] = mask[:-1]
        drop |= added & ~above & ~below
    out = mask & ~drop
    lab, n = ndi.label(out, structure=STRUCT_3D)
    if n == 0:
        return out
    has_air = xp.bincount(lab[aerated & out], minlength=n + 1) > 0
    has_air[0] = False
    return has_air[lab]
