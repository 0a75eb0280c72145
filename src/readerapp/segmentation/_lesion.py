"""Ground-glass and consolidation inside the lung, without vessels, airway walls and specks.

Candidates are lung voxels in the protocol's lesion range (-750 to below 50 HU). On the coarse
grid an opening with a box of ``vessel_radius_mm`` removes thin bright tubes (vessels, their
partial-volume rim, bronchial walls, fissures), then components smaller than ``min_lesion_ml``
are dropped as specks. The surviving region, widened by one coarse voxel, is labelled at full
resolution voxel by voxel from the lightly denoised HU: ground glass -750 <= HU < -300,
consolidation -300 <= HU < 50 (PROTOCOL.md's bins; lung above 50 HU stays label 1).
"""

from __future__ import annotations

from typing import Any

from ..backend import to_numpy
from ..labels import CONSOLIDATION_RANGE_HU, GGO_RANGE_HU
from ._grid import STRUCT_3D, Grid, dilate, opening


def lesion_region_coarse(xp: Any, ndi: Any, c: Any, lung: Any, airway_excl: Any, grid: Grid, *,
                         vessel_radius_mm: float, min_lesion_ml: float, regrow_steps: int = 2) -> Any:
    cand = lung & (c >= GGO_RANGE_HU[0]) & (c < CONSOLIDATION_RANGE_HU[1]) & ~airway_excl
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
    return dilate(ndi, region, (3, 3, 3)) & lung


def label_full(xp: Any, lung_full: Any, region_full: Any, den: Any, raw: Any,
               raw_margin_hu: float) -> Any:
    """The uint8 label map from the full-resolution lung, lesion region and denoised HU.

    The denoised HU decides the bin; a voxel also needs a raw HU no more than ``raw_margin_hu``
    below -750, so aerated lung right next to a dense lesion (whose denoised value the lesion
    pulls up) stays lung instead of forming a ground-glass halo.
    """
    labels = lung_full.astype(xp.uint8)
    lo_g, hi_g = GGO_RANGE_HU
    lo_c, hi_c = CONSOLIDATION_RANGE_HU
    reg = region_full & lung_full & (raw >= lo_g - raw_margin_hu)
    ggo = reg & (den >= lo_g) & (den < hi_g)
    cons = reg & (den >= lo_c) & (den < hi_c)
    labels[ggo] = 2
    labels[cons] = 3
    return labels


__all__ = ["lesion_region_coarse", "label_full", "to_numpy"]
