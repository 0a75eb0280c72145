"""Ground-glass and consolidation inside the lung, without vessels, airway walls and specks.

Candidates are lung voxels in the protocol's lesion range (-750 to below 50 HU, with some
headroom against noise) on the coarse grid. An opening with a box of ``vessel_radius_mm``
removes thin bright tubes (vessels, their partial-volume rim, bronchial walls, fissures), then
components smaller than ``min_lesion_ml`` are dropped as specks, and a short geodesic regrowth
gives back the lesions' edges. The region, widened by one coarse voxel, is labelled at full
resolution voxel by voxel: ground glass -750 <= HU < -300, consolidation -300 <= HU < 50
(PROTOCOL.md's bins; lung above 50 HU stays label 1), see :func:`label_full`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..labels import CONSOLIDATION_RANGE_HU, GGO_RANGE_HU
from ._grid import STRUCT_3D, Grid, bbox, dilate, opening


def lesion_region_coarse(xp: Any, ndi: Any, c: Any, lung: Any, airway_excl: Any, grid: Grid, *,
                         vessel_radius_mm: float, min_lesion_ml: float, regrow_steps: int = 2,
                         dense_headroom_hu: float = 25.0) -> Any:
    """Coarse bool mask of where lesions are (the bins are decided later at full resolution)."""
    box = bbox(xp, lung, (2, 2, 2))
    out = xp.zeros_like(lung)
    if box is None:
        return out
    lung, c, airway_excl = lung[box], c[box], airway_excl[box]
    # Candidates with headroom above 50 HU so noise does not punch holes into consolidation (the
    # full-resolution step applies the exact bins). Where the coarse grid is the data's own
    # (no block averaging), a light smoothing stands in for the averaging.
    if int(np.prod(grid.factors)) >= 4:
        cs = c
    else:
        w = xp.asarray([0.25, 0.5, 0.25], dtype=xp.float32)
        cs = ndi.correlate1d(ndi.correlate1d(c, w, axis=2, mode="nearest"), w, axis=1,
                             mode="nearest")
    cand = lung & (cs >= GGO_RANGE_HU[0]) & (cs < CONSOLIDATION_RANGE_HU[1] + dense_headroom_hu)
    cand &= ~airway_excl
    del cs
    region = opening(ndi, cand, grid.box(vessel_radius_mm))
    region &= cand
    lab, n = ndi.label(region, structure=STRUCT_3D)
    if n:
        sizes = xp.bincount(lab.ravel(), minlength=n + 1)
        keep = sizes * (grid.coarse_voxel_mm3 / 1000.0) >= min_lesion_ml
        keep[0] = False
        region = keep[lab]
    del lab
    # give back what the box opening shaved off real lesions (edges, wedges against the pleura)
    # by a short geodesic dilation inside the candidates, then one voxel for the full-res edge
    for _ in range(regrow_steps):
        region = dilate(ndi, region, (3, 3, 3)) & cand
    out[box] = dilate(ndi, region, (3, 3, 3)) & lung
    return out


def label_full(xp: Any, lung_full: Any, region_full: Any, den: Any, raw: Any,
               raw_margin_hu: float, edge_hu: float) -> Any:
    """The uint8 label map from the full-resolution lung, lesion region and denoised HU.

    The denoised HU decides the bin in flat regions (against noise); where it differs from the
    raw HU by more than ``edge_hu`` the voxel sits on an edge that the smoothing blurred, and the
    raw HU decides. A voxel also needs a raw HU no more than ``raw_margin_hu`` below -750, so
    aerated lung right next to a dense lesion stays lung instead of forming a ground-glass halo.
    """
    den = xp.where(xp.abs(den - raw) > edge_hu, raw.astype(den.dtype), den)
    labels = lung_full.astype(xp.uint8)
    lo_g, hi_g = GGO_RANGE_HU
    lo_c, hi_c = CONSOLIDATION_RANGE_HU
    reg = region_full & lung_full & (raw >= lo_g - raw_margin_hu)
    ggo = reg & (den >= lo_g) & (den < hi_g)
    cons = reg & (den >= lo_c) & (den < hi_c)
    labels[ggo] = 2
    labels[cons] = 3
    return labels

