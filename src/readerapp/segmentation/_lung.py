"""The lung mask on the coarse grid: air regions inside the body, minus the airway, completed.

Completion keeps what a threshold loses: vessels and lesions inside the lung (a per-lung closing
and per-slice hole filling) and dense pathology against the chest wall or diaphragm (hull-based
completion, see ``_hull``). Each lung is completed on its own so nothing bridges the mediastinum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy
from ._chestwall import chest_wall_additions
from ._depth import BodyDepth, keep_outer_additions
from ._grid import STRUCT_3D, Grid, bbox, closing, dilate, erode, holes_2d
from ._hull import complete_side
from ._prune import prune_additions


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


def midline_without_trachea(xp: Any, lung: Any, grid: Grid, body_center_x: float,
                            cut_low_x: bool, cut_high_x: bool, *, min_gap_mm: float = 30.0,
                            max_valley: float = 0.2) -> float:
    """The midline (coarse x) where no trachea was found, from the lungs' column profile.

    Two lungs show as two humps of the profile (lung voxels per column) with a deep valley
    between them at the mediastinum: the valley is the midline. One hump is one lung; where the
    image edge cuts the body on one side only, the visible body's centre lies off the midline,
    away from the cut, and can fall inside the one lung, splitting it and taking the heart for
    a bite of its "lateral" side; that lung is then taken as a whole to be the lung away from
    the cut (the midline is put at the cut edge). Otherwise the body's centre is kept.
    """
    prof = to_numpy(lung.sum(axis=(0, 1))).astype(float)
    nx = prof.size
    if prof.max() <= 0:
        return body_center_x
    k = 2
    prof = np.convolve(np.pad(prof, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), "valid")
    gap = max(1, grid.voxels(min_gap_mm, 2))
    p1 = int(np.argmax(prof))
    far = prof.copy()
    far[max(0, p1 - gap):p1 + gap + 1] = -1.0
    p2 = int(np.argmax(far))
    if far[p2] >= max_valley * prof[p1]:
        a, b = sorted((p1, p2))
        v = a + int(np.argmin(prof[a:b + 1]))
        if prof[v] <= max_valley * min(prof[a], prof[b]):
            return float(v)
    if cut_high_x and not cut_low_x:
        return float(nx)
    if cut_low_x and not cut_high_x:
        return 0.0
    return body_center_x


def split_sides(xp: Any, ndi: Any, lung: Any, midline_x: float, max_parts: int = 20,
                far_px: int | None = None, min_far_fraction: float = 0.02) -> Any:
    """Mask of the low-x lung. Each connected piece goes whole to the side holding most of it,
    so a lung reaching across the midline (the anterior junction, the azygo-oesophageal recess)
    is not cut; only a piece that holds both lungs (touching lungs) is cut at the midline.

    A piece holds both lungs when each side holds a fifth of it, or when at least
    ``min_far_fraction`` of it lies more than ``far_px`` columns beyond the midline on its
    minority side: no lung reaches that far across (where the image edge cuts off most of one
    lung, the strip left of it can be a small share of a piece joined to the other lung)."""
    nx = lung.shape[2]
    by_mid = xp.zeros(lung.shape, dtype=bool)
    cut = int(min(max(np.ceil(midline_x), 0), nx))
    by_mid[:, :, :cut] = True
    lab, n = ndi.label(lung, structure=STRUCT_3D)
    if n == 0:
        return by_mid & lung
    sizes = to_numpy(xp.bincount(lab.ravel(), minlength=n + 1))
    sizes[0] = 0
    out = by_mid & lung
    for k in np.argsort(sizes)[::-1][:max_parts]:
        if sizes[k] == 0:
            break
        piece = lab == int(k)
        cols = to_numpy(piece.sum(axis=(0, 1))).astype(float)
        low_mass, high_mass = cols[:cut].sum(), cols[cut:].sum()
        both = min(low_mass, high_mass) > 0.2 * (low_mass + high_mass)
        if not both and far_px is not None:
            far = (cols[:max(cut - far_px, 0)].sum() if low_mass < high_mass
                   else cols[min(cut + far_px, nx):].sum())
            both = far >= min_far_fraction * (low_mass + high_mass)
        if both:
            # both lungs in one piece (touching at a junction line): separate them by erosion
            low_part = _separate(xp, ndi, piece, cut)
            if low_part is not None:
                out = (out & ~piece) | low_part
            continue
        if low_mass >= high_mass:
            out |= piece
        else:
            out &= ~piece
    return out


def _separate(xp: Any, ndi: Any, piece: Any, cut: int, max_r: int = 3) -> Any | None:
    """The low-x lung of a piece holding both, or None when erosion does not part them.

    The smallest in-plane erosion that leaves two big pieces on either side of the midline
    gives the seeds; they then grow back alternately inside the piece, so the junction is
    shared out where the lungs meet rather than at a straight cut.
    """
    box = bbox(xp, piece, (1, 1, 1))
    if box is None:
        return None
    sub = piece[box]
    x0 = box[2].start
    total = float(sub.sum())
    for r in range(1, max_r + 1):
        core = erode(ndi, sub, (1, 2 * r + 1, 2 * r + 1))
        lab, n = ndi.label(core, structure=STRUCT_3D)
        if n < 2:
            continue
        sizes = to_numpy(xp.bincount(lab.ravel(), minlength=n + 1)).astype(float)
        sizes[0] = 0
        order = np.argsort(sizes)[::-1][:2]
        if sizes[order[1]] < 0.1 * total:
            continue
        a, b = lab == int(order[0]), lab == int(order[1])
        ca = float((to_numpy(a.sum(axis=(0, 1))) * np.arange(sub.shape[2])).sum() / sizes[order[0]])
        cb = float((to_numpy(b.sum(axis=(0, 1))) * np.arange(sub.shape[2])).sum() / sizes[order[1]])
        if (ca + x0 < cut) == (cb + x0 < cut):
            continue  # both seeds on one side: not the two lungs
        if ca > cb:
            a, b = b, a
        for _ in range(r + 2):
            a = dilate(ndi, a, (1, 3, 3)) & sub & ~b
            b = dilate(ndi, b, (1, 3, 3)) & sub & ~a
        rest = sub & ~a & ~b
        xs = xp.arange(sub.shape[2])[None, None, :] + x0
        low = a | (rest & (xs < cut))
        out = xp.zeros_like(piece)
        out[box] = low
        return out
    return None


def complete_lungs(xp: Any, ndi: Any, lung: Any, c: Any, body: Any, midline_x: float,
                   grid: Grid, *, closing_mm: float, hole_max_mm2: float, hull_max_mm2: float,
                   hull_max_hu: float, pleura_mm: float, z_closing_mm: float,
                   z_max_hu: float = 50.0, hull_min_lateral_fraction: float = 0.5,
                   outer_tolerance_mm: float = 0.0,
                   far_across_mm: float = 25.0,
                   chest_wall: dict[str, float] | None = None,
                   superior_high: bool | None = None,
                   prune: dict[str, float] | None = None,
                   ) -> tuple[Any, dict[str, float], dict[str, Any]]:
    """Closing + hole filling per lung, hull completion, then a closing along z.

    Where the field of view cuts the body, the image edge counts as the body's surface for
    that test (``_depth``): a hull chord between two pieces of a lung whose lateral part is cut
    off runs through the liver or spleen, deeper than both pieces.

    What the hull and the closing along z add is kept only on the lung's chest-wall side
    (``_depth.keep_outer_additions``): at the lung bases both would otherwise take slabs and
    wedges of the liver or spleen dome, which the lung wraps round.

    ``chest_wall`` (keyword arguments of ``_chestwall.chest_wall_additions``; None: off) then
    adds the soft tissue between each lung and its rib cage (a lung's whole back consolidated),
    under the same chest-wall-side rule.

    Last, the additions are pruned (``_prune``): a dome's cap ringed by the lung base (needs
    ``superior_high``; None skips that rule), lines one coarse voxel thin, single-slice pieces
    on thin slices, islands without aerated lung; ``prune`` holds the keyword arguments of
    ``_prune.prune_additions``.

    Returns the mask, the two sides' air-like volumes (mL) and per side the chest wall
    completion's figures (wall thickness used, slices and mL added).
    """
    px_mm2 = grid.spacing_zyx[1] * grid.spacing_zyx[2]
    out = xp.zeros_like(lung)
    vols: dict[str, float] = {}
    box_close = grid.box(closing_mm)
    margin = tuple(s + 2 for s in box_close)
    pleura_y, pleura_x = grid.voxels(pleura_mm, 1), grid.voxels(pleura_mm, 2)
    low = split_sides(xp, ndi, lung, midline_x, far_px=grid.voxels(far_across_mm, 2))
    depth: BodyDepth | None = None
    ring = 2  # coarse voxels: the lung bordering an addition
    cw_info: dict[str, Any] = {}
    for name, lateral_sign in (("low_x", -1), ("high_x", 1)):
        side = lung & (low if lateral_sign < 0 else ~low)
        vols[name] = float(side.sum()) * grid.coarse_voxel_mm3 / 1000.0
        box = bbox(xp, side, margin)  # type: ignore[arg-type]
        if box is None:
            continue
        s = side[box]
        # closed as if the array went on empty: at the image edge, a closing whose erosion
        # counts the outside as lung would extend the lung to the edge across a gap (where the
        # field of view cuts the mediastinum, a strip of it along the edge)
        padw = tuple((b // 2, b // 2) for b in box_close)
        core = tuple(slice(w, w + n) for (w, _), n in zip(padw, s.shape, strict=True))
        s = closing(ndi, xp.pad(s, padw), box_close)[core] & body[box]
        s |= holes_2d(xp, ndi, s, hole_max_mm2 / px_mm2)
        # The hull step runs on the host (per-slice geometry on a small cropped mask). Coronal
        # hulls were tried for dependent consolidation and swallowed the liver dome on real CT.
        sh, ch, bh = to_numpy(s), to_numpy(c[box]), to_numpy(body[box])
        added = complete_side(sh, ch, bh, lateral_sign, px_mm2, max_area_mm2=hull_max_mm2,
                              max_hu=hull_max_hu, pleura_px=(pleura_y, pleura_x),
                              min_lateral_fraction=hull_min_lateral_fraction)
        added = xp.asarray(added)
        added |= _z_closing(xp, ndi, s | added, c[box], body[box], lateral_sign,
                            grid.voxels(z_closing_mm, 0), z_max_hu) & ~s
        # only what lies on the chest-wall side of the lung: never an organ's dome
        abox = bbox(xp, added, (0, ring + 1, ring + 1))
        if abox is not None:
            full_box = tuple(slice(b.start + a.start, b.start + a.stop)
                             for a, b in zip(abox, box, strict=True))
            if depth is None:
                depth = BodyDepth(body, grid)
            s[abox] |= keep_outer_additions(
                xp, ndi, added[abox], s[abox], xp.asarray(depth.crop(full_box)),
                ring_px=ring, tolerance_mm=outer_tolerance_mm)
        s |= holes_2d(xp, ndi, s, hole_max_mm2 / px_mm2)
        out[box] |= s
        if chest_wall is not None:
            if depth is None:
                depth = BodyDepth(body, grid)
            cw_info[name] = _chest_wall(xp, ndi, out, box, s, c, body, lateral_sign, grid, depth,
                                        ring, outer_tolerance_mm, hole_max_mm2 / px_mm2,
                                        chest_wall)
    out = prune_additions(xp, ndi, out, lung, grid, superior_high, **(prune or {}))
    return out, vols, cw_info


def _chest_wall(xp: Any, ndi: Any, out: Any, box: tuple[slice, ...], s: Any, c: Any, body: Any,
                lateral_sign: int, grid: Grid, depth: BodyDepth, ring: int, tolerance_mm: float,
                hole_max_px: float, params: dict[str, float]) -> dict[str, Any]:
    """Chest-wall-bounded completion of one lung (``_chestwall``), in place into ``out``.

    Runs on a crop reaching ``reach_mm`` past the lung in-plane (to its ribs) and the bone
    window's depth in z; what it adds must pass the depth rule like the hull's additions.
    """
    kw: dict[str, Any] = dict(params)
    reach = kw.pop("reach_mm")
    kz = grid.voxels(kw["bone_z_mm"], 0)
    ext = (kz, grid.voxels(reach, 1), grid.voxels(reach, 2))
    shape = out.shape
    cbox = tuple(slice(max(0, b.start - e), min(n, b.stop + e))
                 for b, e, n in zip(box, ext, shape, strict=True))
    side = xp.zeros(tuple(b.stop - b.start for b in cbox), dtype=bool)
    inner = tuple(slice(b.start - cb.start, b.stop - cb.start)
                  for b, cb in zip(box, cbox, strict=True))
    side[inner] = s
    added_h, info = chest_wall_additions(
        to_numpy(side), to_numpy(c[cbox]), to_numpy(body[cbox]), lateral_sign,
        grid.spacing_zyx, **kw)
    added = xp.asarray(added_h) & ~out[cbox]
    info["added_ml"] = 0.0
    if bool(added.any()):
        kept = keep_outer_additions(xp, ndi, added, side, xp.asarray(depth.crop(cbox)),
                                    ring_px=ring, tolerance_mm=tolerance_mm)
        grown = side | kept
        grown |= holes_2d(xp, ndi, grown, hole_max_px) & ~out[cbox]
        new = grown & ~side
        out[cbox] |= new
        info["added_ml"] = round(float(new.sum()) * grid.coarse_voxel_mm3 / 1000.0, 1)
    return info


def _z_closing(xp: Any, ndi: Any, s: Any, c: Any, body: Any, lateral_sign: int, k: int,
               max_hu: float) -> Any:
    """Dense lung that the slices above and below show to be lung: a closing along z.

    A consolidation that takes a lung's whole front or back in some slices leaves no bite for a
    hull, but the slices above and below it still reach out to the chest wall; a voxel with lung
    within ``k`` slices on both sides is filled. Organs bulging into the lung from one side (the
    liver dome, the heart, the aortic arch) are not, since the lung lies on one side only, and
    nothing medial to the lung in its row (in this slice, or nearby ones where the row has
    none) is added, nor anything denser than ``max_hu`` (the top of the consolidation bin) on a
    lightly smoothed image. A bump of the liver into the lung base that has lung below it
    too (the posterior recess) would be added; the caller keeps only additions on the
    chest-wall side of the lung (``_depth``), which drops it.
    """
    if k < 1:
        return xp.zeros_like(s)
    pad = k + 1
    sp = xp.pad(s, ((pad, pad), (0, 0), (0, 0)))
    closed = erode(ndi, dilate(ndi, sp, (2 * k + 1, 1, 1)), (2 * k + 1, 1, 1))[pad:-pad]
    w = xp.asarray([0.25, 0.5, 0.25], dtype=xp.float32)
    cs = ndi.correlate1d(ndi.correlate1d(c, w, axis=2, mode="nearest"), w, axis=1, mode="nearest")
    add = closed & ~s & (cs < max_hu) & body
    if not bool(add.any()):
        return add
    near = dilate(ndi, s, (2 * k + 1, 1, 1))
    nx = s.shape[2]
    xs = xp.arange(nx)[None, None, :]

    def medial_edge(m: Any) -> Any:
        m = m.view(xp.uint8)  # argmax over uint8: supported alike by NumPy and CuPy
        if lateral_sign > 0:
            return xp.argmax(m, axis=2)
        return nx - 1 - xp.argmax(m[:, :, ::-1], axis=2)

    has = s.any(axis=2)
    medial = xp.where(has, medial_edge(s), medial_edge(near))[:, :, None]
    lateral_of = xs >= medial if lateral_sign > 0 else xs <= medial
    return add & lateral_of
