"""Ground-glass and consolidation inside the lung, without vessels, airway walls and specks.

Candidates are lung voxels in the protocol's lesion range (-750 to below 50 HU, with some
headroom against noise) on the coarse grid. Bronchovascular structures among them are found by
their shape (``_vessels``: a multiscale Hessian tubularity, with the hilar vessels' own scales
near the main and lobar bronchi) and stay lung. An octagonal opening of ``vessel_radius_mm``
removes what is thinner still, components smaller than ``min_lesion_ml`` are dropped as specks,
and only along the pleura does a lesion grow back into its candidates (a subpleural wedge no
opening keeps). There is no other growth: it followed the partial-volume vessels touching
lesions, the halo readers saw. The region is labelled at full resolution voxel by voxel: ground
glass -750 <= HU < -300, consolidation -300 <= HU < 50 (PROTOCOL.md's bins; lung above 50 HU
stays label 1), see :func:`label_full`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..labels import CONSOLIDATION_RANGE_HU, GGO_RANGE_HU
from ._grid import STRUCT_3D, Grid, bbox, dilate, erode, opening, opening_round
from ._vessels import THICK_SLICE_MM, tubularity


def lesion_region_coarse(xp: Any, ndi: Any, c: Any, lung: Any, airway_excl: Any, grid: Grid, *,
                         vessel_radius_mm: float, min_lesion_ml: float,
                         dense_headroom_hu: float = 25.0,
                         vessel_sigmas_mm: tuple[float, ...] = (1.5, 3.0),
                         vessel_threshold: float = 0.15, vessel_c: float = 100.0,
                         vessel_min_hu: float = -500.0, thick_mm: float = 4.5,
                         guard_mm: float = 3.0, hilum: Any | None = None,
                         hilar_sigmas_mm: tuple[float, ...] = (4.5, 7.0),
                         surround_mm: float = 6.0, surround_max: float = 0.6,
                         pleural_mm: float = 6.0) -> tuple[Any, Any]:
    """Coarse bool masks (lesion region, bronchovascular structures).

    The lesion region is where lesions are (the bins are decided later at full resolution);
    the second mask is what the tubularity took for vessels and bronchial walls: lung, never
    lesion. Nothing grows back from the opened cores except along the pleura, and never into
    a vessel, so a vessel touching a lesion does not pull a halo of partial-volume voxels into
    it along its course.

    ``hilum`` (coarse bool, or None) is where the pulmonary arteries and veins enter the lung:
    there the tubularity is also taken at the hilar vessels' own scales (``hilar_sigmas_mm``),
    and what it finds is vessel however thick it is. Elsewhere the largest scales would take
    the edges of big lesions for tubes.
    """
    box = bbox(xp, lung, (2, 2, 2))
    out = xp.zeros_like(lung)
    vessels_out = xp.zeros_like(lung)
    if box is None:
        return out, vessels_out
    lung, c, airway_excl = lung[box], c[box], airway_excl[box]
    # Candidates with headroom above 50 HU so noise does not punch holes into consolidation (the
    # full-resolution step applies the exact bins). Where the coarse grid is the data's own
    # (no block averaging), a light in-plane smoothing stands in for the averaging.
    if int(np.prod(grid.factors)) >= 4:
        cs = c
    else:
        w = xp.asarray([0.25, 0.5, 0.25], dtype=xp.float32)
        cs = ndi.correlate1d(ndi.correlate1d(c, w, axis=2, mode="nearest"), w, axis=1,
                             mode="nearest")
    cand = lung & (cs >= GGO_RANGE_HU[0]) & (cs < CONSOLIDATION_RANGE_HU[1] + dense_headroom_hu)
    cand &= ~airway_excl
    del cs
    # bright tubes among the candidates (and their partial-volume rim, one voxel in-plane)
    img = xp.clip(c, -1000.0, 100.0).astype(xp.float32)
    tube = tubularity(xp, ndi, img, cand & (c >= vessel_min_hu), grid.spacing_zyx,
                      vessel_sigmas_mm, c=vessel_c)
    vessel = tube >= vessel_threshold
    del tube
    hilar = xp.zeros_like(cand)
    if hilum is not None:
        hilar = _hilar_vessels(xp, ndi, img, cand & hilum[box], grid, hilar_sigmas_mm,
                               vessel_threshold, vessel_c)
        hilar = dilate(ndi, hilar, (1, 3, 3)) & cand
    del img
    vessel &= cand
    # the inside and the rim of anything wider in-plane than the largest vessel scale is never
    # vessel: a lesion's curved edge reads as a tube at the small scales, and a vessel running
    # into a consolidation is part of it there
    # (wide in-plane, or thick in 3-D and then its caps within ``guard_mm`` too)
    wide = opening(ndi, cand, grid.box(thick_mm, in_plane_only=True))
    guard = dilate(ndi, wide, (1, 5, 5))
    del wide
    guard |= dilate(ndi, opening(ndi, cand, grid.box(thick_mm)), grid.box(guard_mm))
    vessel &= ~(guard & cand) | hilar
    del guard
    # a vessel inside a lesion (ground glass round it, not aerated lung) is part of the lesion
    # there: only vessels whose in-plane surroundings are mostly aerated lung are taken out
    win = (1, 2 * grid.voxels(surround_mm, 1) + 1, 2 * grid.voxels(surround_mm, 2) + 1)
    around = ndi.uniform_filter(cand.astype(xp.float32), size=win, mode="nearest")
    vessel &= (around < surround_max) | hilar
    del around
    free = cand & ~vessel
    # the candidates opened without their vessels (what is lesion for sure), grown back within
    # the candidates opened with them, less the vessels: a vessel crossing a small lesion cuts
    # it into pieces that the first opening alone removes; the second alone keeps the thick
    # knots where hilar vessels branch
    rv = grid.box(vessel_radius_mm)
    sure = opening_round(xp, ndi, free, rv[1] // 2, rv[0] // 2) & free
    within = opening_round(xp, ndi, cand, rv[1] // 2, rv[0] // 2) & free
    region = sure
    for _ in range(2):
        region = dilate(ndi, region, (1, 3, 3)) & within
    region |= sure
    del sure, within
    # against the pleura a lesion thins to a wedge that no opening keeps; there (within
    # ``pleural_mm`` of the lung's edge, in-plane) it grows back into its candidates, up to
    # twice that far along the pleura, where no vessel runs that it could follow into the lung
    rim = free & ~erode(ndi, lung, grid.box(pleural_mm, in_plane_only=True))
    step = (3 if grid.spacing_zyx[0] <= THICK_SLICE_MM else 1, 3, 3)  # never across thick slices
    for _ in range(grid.voxels(2.0 * pleural_mm, 2)):
        region |= dilate(ndi, region, step) & rim
    del rim
    lab, n = ndi.label(region, structure=STRUCT_3D)
    if n:
        sizes = xp.bincount(lab.ravel(), minlength=n + 1)
        keep = sizes * (grid.coarse_voxel_mm3 / 1000.0) >= min_lesion_ml
        keep[0] = False
        region = keep[lab]
    del lab
    out[box] = region
    vessels_out[box] = vessel
    return out, vessels_out


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


def _hilar_vessels(xp: Any, ndi: Any, img: Any, where: Any, grid: Grid,
                   sigmas_mm: tuple[float, ...], threshold: float, contrast: float) -> Any:
    """Large bright tubes (hilar arteries and veins) among the hilum's candidates.

    ``img`` is the coarse HU clipped to -1000..100 (as the small scales use it)."""
    sub = bbox(xp, where, (4, 8, 8))
    out = xp.zeros_like(where)
    if sub is None:
        return out
    tube = tubularity(xp, ndi, img[sub], where[sub] & (img[sub] >= -300.0), grid.spacing_zyx,
                      sigmas_mm, c=contrast)
    out[sub] = tube >= threshold
    return out


def hilum_zone(xp: Any, ndi: Any, airway_lumen: Any, lung: Any, grid: Grid, superior_high: bool,
               carina_z: int | None, radius_mm: float) -> Any | None:
    """Lung near the main and lobar bronchi below the carina: where the hila are.

    None where no airway was found below the carina (no trachea, or a scan that stops above
    it): the hilar rule is then not applied.
    """
    below = airway_lumen.copy()
    if carina_z is not None:
        if superior_high:
            below[carina_z + 1:] = False
        else:
            below[:carina_z] = False
    if not bool(below.any()):
        return None
    return dilate(ndi, below, grid.box(radius_mm)) & lung
