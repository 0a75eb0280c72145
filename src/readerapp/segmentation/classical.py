"""The classical lung and lesion segmentation: thresholds, airway removal, morphology.

Stages (each timed): move to the backend, block-average to a ~1.5 mm coarse grid, body and
internal air (robust to a field of view that cuts the body: air at the image edge enclosed by
the body's hull is a cut lung, not outside air; see ``_body``), airway (trachea and main bronchi) by region growing with leak control, lung
components, per-lung completion (closing, holes, hull against the chest wall, a closing along
z for dense lung that takes a lung's whole front or back in some slices; the hull and z additions
are kept only on the chest-wall side of the lung, never an organ's dome), completion up to the
rib cage for a lung consolidated over its whole back (``_chestwall``, 1.3), lesion region
(1.4: bronchovascular structures removed by a multiscale Hessian tubularity, ``_vessels``, with
the hilar vessels' own scales near the main and lobar bronchi; an octagonal opening against
what is thinner still; speck removal; no growth back beyond one coarse voxel in-plane, none
across thick slices), and a full-resolution refinement that labels each voxel by the protocol's
bins on its own HU (lightly denoised in-plane only inside flat lesion regions). NumPy and CuPy run the same code with ``xp``/``ndi`` swapped; only the
per-slice convex hulls run on the host (small cropped masks).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .. import __version__
from ..backend import array_module, ndimage_module, resolve_backend, to_numpy
from ..labels import PADDING_BELOW_HU
from ..progress import ProgressFn, no_progress
from ..volume import CTVolume
from ._airway import airway_exclusion, body_and_internal_air, grow_airway
from ._grid import bbox, choose_grid, dilate, downsample, erode, full_slices, upsample
from ._lesion import hilum_zone, label_full, lesion_region_coarse
from ._lung import complete_lungs, lung_components, midline_without_trachea
from .base import SegmentationResult, StageTimer

VERSION = "1.4"


@dataclass(frozen=True)
class ClassicalParameters:
    """Every tunable of the method; recorded in the provenance of each result."""

    #: Coarse working grid for the morphology (mm).
    coarse_inplane_mm: float = 1.5
    coarse_z_mm: float = 1.0
    #: Tight field of view (``_body``): air reaching the image edge or the padding is internal
    #: (a lung cut by the edge) when this share of it lies inside its slice's body hull, or this
    #: share of its 3-D group does; outside air lies outside the hull (measured 0-6 %).
    min_enclosed_fraction: float = 0.5
    min_group_fraction: float = 0.25
    #: The body counts as cut by a side's image edge when this share of its rows touches it.
    min_cut_contact: float = 0.2
    #: A piece of lung with 2 % of it this far across the midline holds both lungs (``_lung``).
    far_across_mm: float = 25.0
    #: Airway growing: thresholds tried in turn while the grown volume exceeds the limit.
    airway_thresholds_hu: tuple[float, ...] = (-900.0, -925.0, -950.0, -970.0, -985.0, -995.0)
    airway_max_ml: float = 200.0
    #: Airways thinner than this radius stay in the lung (segmental bronchi and beyond).
    airway_thick_radius_mm: float = 2.0
    #: Wall removed with the trachea and main bronchi.
    airway_wall_mm: float = 2.5
    #: Smallest air component considered as a lung.
    lung_min_ml: float = 20.0
    #: Per-lung closing (vessels, small dense gaps) and per-slice hole filling.
    closing_mm: float = 4.0
    hole_max_mm2: float = 6000.0
    #: Hull completion: largest accepted defect per slice, densest coarse HU, pleural widening.
    hull_max_area_mm2: float = 3000.0
    hull_max_hu: float = 100.0
    pleura_mm: float = 2.0
    #: A hull defect is a bite only when at least this share of it lies lateral to the lung's
    #: medial edge (a row-wise cut through an organ inside the hull is not).
    hull_min_lateral_fraction: float = 0.5
    #: Dense additions (hull, closing along z) are kept only where no deeper below the body
    #: surface than the lung they border, plus this (mm): the chest-wall side, not an organ dome.
    outer_tolerance_mm: float = 0.0
    #: Closing along z: dense lung with lung within this distance above and below is kept.
    z_closing_mm: float = 25.0
    #: Pruning of the completed mask (``_prune``): an added piece the lung rings in-plane needs
    #: mask under this share of it in the slice below (an organ's dome has none); an addition
    #: one slice thick goes where slices are thinner than ``single_slice_max_mm``.
    ringed_min_support: float = 0.5
    single_slice_max_mm: float = 3.0
    #: Chest-wall-bounded completion (``_chestwall``, new in 1.3): soft tissue between a lung
    #: and its rib cage is lung where the cage lies further out than the chest wall's own
    #: thickness (lower quartile of the lung-to-bone distance around the lung, at least
    #: ``cage_min_wall_mm``; a lung whose wall is thicker than ``cage_max_wall_mm`` has no ribs
    #: at its pleura and gets nothing). Bone: coarse HU at least ``cage_bone_hu`` within
    #: ``cage_bone_z_mm`` in z (intercostal slices see the ribs above and below); never within
    #: ``cage_medial_cone_deg`` of the medial direction nor more than
    #: ``cage_anterior_limit_deg`` from the lateral one towards the front (the anterior junction
    #: and retrosternal fat; dependent lung is posterior); looked for ``cage_reach_mm`` out.
    #: Only pieces reaching ``cage_min_excess_mm`` past the wall, at least
    #: ``cage_min_thickness_mm`` thick, with a median coarse HU of at least
    #: ``cage_min_median_hu`` (not extrapleural fat) and ``cage_min_ml`` in 3-D are added: on
    #: the real chest CT without pathology the wall's slivers are then all dropped.
    chest_wall_completion: bool = True
    cage_bone_hu: float = 180.0
    cage_bone_z_mm: float = 10.0
    cage_soft_min_hu: float = -400.0
    cage_soft_max_hu: float = 100.0
    cage_min_wall_mm: float = 3.0
    cage_max_wall_mm: float = 12.0
    cage_min_excess_mm: float = 3.0
    cage_medial_cone_deg: float = 45.0
    cage_anterior_limit_deg: float = 100.0
    cage_min_median_hu: float = -30.0
    cage_min_thickness_mm: float = 8.0
    cage_min_ml: float = 20.0
    cage_reach_mm: float = 80.0
    #: Full-resolution boundary: a voxel next to the coarse mask is lung when below this.
    aerated_below_hu: float = -400.0
    #: Lesion region: opening radius removing vessels / walls; smallest lesion kept (mL).
    vessel_radius_mm: float = 3.0
    min_lesion_ml: float = 0.1
    #: Bronchovascular structures (``_vessels``): Frangi tubularity at these scales (mm), a
    #: voxel at or above ``vessel_threshold`` whose coarse HU is at least ``vessel_min_hu`` is
    #: vessel (with its one-voxel rim): lung, never lesion.
    vessel_sigmas_mm: tuple[float, ...] = (1.5, 3.0)
    vessel_threshold: float = 0.15
    vessel_contrast_hu: float = 100.0
    vessel_min_hu: float = -500.0
    #: The hila: lung within this distance (mm) of the main and lobar bronchi below the carina;
    #: there the tubularity also runs at the hilar vessels' scales (mm).
    hilum_radius_mm: float = 30.0
    hilar_sigmas_mm: tuple[float, ...] = (4.5, 7.0)
    #: Light in-plane denoising (binomial 1-2-1 in x and y) before voxel-wise HU labelling.
    denoise_inplane: bool = True
    #: A lesion voxel's raw HU may lie at most this far below -750 (0: the acquired voxel's own
    #: HU decides the lesion boundary, as the protocol's bins say; no halo around lesions).
    raw_margin_hu: float = 0.0
    #: Where denoised and raw HU differ by more than this, the voxel is on an edge: raw decides.
    edge_hu: float = 150.0


class ClassicalSegmenter:
    """Threshold + morphology segmentation of both lungs, ground glass and consolidation."""

    name = "classical"
    version = VERSION

    def __init__(self, parameters: ClassicalParameters | None = None) -> None:
        self.parameters = parameters or ClassicalParameters()

    def propose(
        self, volume: CTVolume, *, backend: str = "auto", progress: ProgressFn = no_progress
    ) -> SegmentationResult:
        """Propose the label map of PROTOCOL.md for ``volume`` (host NumPy uint8 labels)."""
        p = self.parameters
        b = resolve_backend(backend)
        xp = array_module(b)
        ndi = ndimage_module(b)
        sync = (lambda: xp.cuda.Device().synchronize()) if b == "cupy" else None
        timer = StageTimer(progress, sync)
        warnings: list[str] = []
        superior_high = volume.direction[8] >= 0.0

        with timer.stage("transfer", 0.0):
            hu = xp.asarray(volume.hu)
        with timer.stage("downsample", 0.05):
            grid = choose_grid(volume.shape, volume.spacing_zyx, p.coarse_inplane_mm, p.coarse_z_mm)
            c, pad = downsample(xp, hu, grid)
        with timer.stage("body", 0.1):
            ba = body_and_internal_air(xp, ndi, c, pad,
                                       min_enclosed_fraction=p.min_enclosed_fraction,
                                       min_group_fraction=p.min_group_fraction,
                                       min_cut_contact=p.min_cut_contact)
        with timer.stage("airway", 0.2):
            aw = grow_airway(xp, ndi, c, ba.internal_air, grid, superior_high, ba.body_center_x,
                             thresholds=p.airway_thresholds_hu, max_ml=p.airway_max_ml,
                             thick_radius_mm=p.airway_thick_radius_mm,
                             cut_low_x=ba.cut_low_x, cut_high_x=ba.cut_high_x)
            if aw is None:
                warnings.append("trachea not found in the upper slices: airways not removed")
                airway_lumen = xp.zeros_like(c, dtype=bool)
                midline = ba.body_center_x
            else:
                airway_lumen = aw.lumen
                midline = aw.center_x
                if aw.grown_ml > p.airway_max_ml:
                    warnings.append(
                        f"airway growing leaked even at {aw.threshold_hu:.0f} HU; "
                        "check the airway exclusion")
            airway_excl = airway_exclusion(xp, ndi, airway_lumen, grid, p.airway_wall_mm)
        with timer.stage("lung", 0.35):
            air = ba.internal_air & ~airway_excl
            lung_air, w = lung_components(xp, ndi, air, grid, superior_high, p.lung_min_ml)
            warnings += w
            midline_source = "trachea"
            if aw is None:
                midline_source = "lungs or body"
                midline = midline_without_trachea(xp, lung_air, grid, ba.body_center_x,
                                                  ba.cut_low_x, ba.cut_high_x)
        with timer.stage("completion", 0.45):
            cage = None if not p.chest_wall_completion else {
                "bone_hu": p.cage_bone_hu, "bone_z_mm": p.cage_bone_z_mm,
                "soft_min_hu": p.cage_soft_min_hu, "soft_max_hu": p.cage_soft_max_hu,
                "min_wall_mm": p.cage_min_wall_mm, "max_wall_mm": p.cage_max_wall_mm,
                "min_excess_mm": p.cage_min_excess_mm,
                "medial_cone_deg": p.cage_medial_cone_deg,
                "anterior_limit_deg": p.cage_anterior_limit_deg,
                "min_median_hu": p.cage_min_median_hu, "min_thickness_mm": p.cage_min_thickness_mm,
                "min_ml": p.cage_min_ml, "reach_mm": p.cage_reach_mm}
            lung_c, side_ml, cage_info = complete_lungs(
                xp, ndi, lung_air, c, ba.body, midline, grid, closing_mm=p.closing_mm,
                hole_max_mm2=p.hole_max_mm2, hull_max_mm2=p.hull_max_area_mm2,
                hull_max_hu=p.hull_max_hu, pleura_mm=p.pleura_mm, z_closing_mm=p.z_closing_mm,
                hull_min_lateral_fraction=p.hull_min_lateral_fraction,
                outer_tolerance_mm=p.outer_tolerance_mm, far_across_mm=p.far_across_mm,
                chest_wall=cage, superior_high=superior_high,
                prune={"min_support": p.ringed_min_support,
                       "max_single_mm": p.single_slice_max_mm})
            lung_c &= ~airway_excl & ~pad & ba.body
            lo, hi = sorted(side_ml.values())
            if hi > 0 and lo < 0.1 * hi:
                warnings.append(
                    f"only one lung found (the other side holds {lo:.0f} mL of air-like lung)")
        with timer.stage("lesions", 0.6):
            region_c, vessels_c = lesion_region_coarse(
                xp, ndi, c, lung_c, airway_excl, grid, vessel_radius_mm=p.vessel_radius_mm,
                min_lesion_ml=p.min_lesion_ml,
                vessel_sigmas_mm=p.vessel_sigmas_mm, vessel_threshold=p.vessel_threshold,
                vessel_c=p.vessel_contrast_hu, vessel_min_hu=p.vessel_min_hu,
                hilum=hilum_zone(xp, ndi, airway_lumen, lung_c, grid, superior_high,
                                 None if aw is None else aw.carina_z, p.hilum_radius_mm),
                hilar_sigmas_mm=p.hilar_sigmas_mm)
        with timer.stage("refine", 0.7):
            labels = self._refine(xp, ndi, hu, grid, lung_c, lung_air, region_c, vessels_c,
                                  airway_excl)
        with timer.stage("extras", 0.9):
            trachea = upsample(xp, airway_lumen, grid) & (hu < -500) & (hu >= PADDING_BELOW_HU)
            body = upsample(xp, ba.body, grid) & (hu >= PADDING_BELOW_HU)
            labels_h = to_numpy(labels)
            extras = {"trachea": to_numpy(trachea), "body": to_numpy(body)}
        progress(1.0, "segmentation done")

        lung_ml = float((labels_h > 0).sum()) * volume.voxel_volume_ml
        if not 500.0 <= lung_ml <= 10000.0:
            warnings.append(f"implausible lung volume {lung_ml:.0f} mL: check the lung mask")
        provenance: dict[str, Any] = {
            "method": self.name,
            "version": self.version,
            "parameters": asdict(p),
            "backend": b,
            # the per-slice convex hulls run on the host whatever the backend (small crops)
            "host_stages": ["completion.hull", "completion.depth", "completion.chest_wall"],
            "readerapp_version": __version__,
            "grid": {"factors_zyx": list(grid.factors),
                     "coarse_spacing_zyx_mm": [round(s, 4) for s in grid.spacing_zyx]},
            "body": {
                "cut_by_image_edge": [side for side, cut in (("low_x", ba.cut_low_x),
                                                             ("high_x", ba.cut_high_x)) if cut],
                "edge_air_kept_ml": round(ba.enclosed_voxels * grid.coarse_voxel_mm3 / 1000.0, 1),
                "midline_column": round(float(midline) * grid.factors[2], 1),  # full-res x index
                "midline_from": midline_source},
            "airway": None if aw is None else {
                "threshold_hu": aw.threshold_hu, "grown_ml": round(aw.grown_ml, 1),
                "seed_slice": aw.seed_z, "carina_slice": aw.carina_z},
            # per lung: lung-to-rib distance found (mm), slices with additions proposed, mL kept
            "chest_wall": cage_info,
        }
        return SegmentationResult(labels=labels_h, provenance=provenance, timings=timer.timings,
                                  extras=extras, warnings=warnings)

    def _refine(self, xp: Any, ndi: Any, hu: Any, grid: Any, lung_c: Any, lung_air: Any,
                region_c: Any, vessels_c: Any, airway_excl: Any) -> Any:
        """Full-resolution labels: the coarse boundary re-decided by threshold, HU bins inside."""
        p = self.parameters
        labels = xp.zeros(grid.full_shape, dtype=xp.uint8)
        nb = (3 if grid.factors[0] > 1 else 1, 3, 3)
        dil_c = dilate(ndi, lung_c, nb)
        box = bbox(xp, dil_c)
        if box is None:
            return labels
        fbox = full_slices(box, grid)
        shape = tuple(s.stop - s.start for s in fbox)

        def up(m: Any) -> Any:
            return upsample(xp, m[box], grid, shape)

        h = hu[fbox]
        den = h.astype(xp.float32)
        if p.denoise_inplane:
            w = xp.asarray([0.25, 0.5, 0.25], dtype=xp.float32)
            den = ndi.correlate1d(den, w, axis=2, mode="nearest")
            den = ndi.correlate1d(den, w, axis=1, mode="nearest")
        valid = h >= PADDING_BELOW_HU
        core = up(erode(ndi, lung_c, nb))
        dense_added = up(lung_c & ~lung_air)
        lung_full = core | (up(dil_c & ~airway_excl) & (den < p.aerated_below_hu))
        lung_full |= up(lung_c) & dense_added
        lung_full &= valid
        # one coarse voxel more, for the full-resolution edge: in-plane, and along z only where
        # a coarse voxel spans several slices (never a whole thick slice beyond the lesion)
        edge = (3 if grid.factors[0] > 1 else 1, 3, 3)
        region = dilate(ndi, region_c, edge) & lung_c & ~vessels_c
        labels[fbox] = label_full(xp, lung_full, up(region), den, h, p.raw_margin_hu,
                                  p.edge_hu)
        return labels
