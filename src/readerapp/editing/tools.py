"""Editing tools as pure functions of arrays: brush shapes, connected fill, lesion removal,
interpolation between slices. Each returns candidate flat indices (and, for interpolation, the
label to paint); :class:`~readerapp.editing.LabelEditor` applies the editing rule and records undo.

The mouse tools are generators (press, then each move is a ``send``, ``None`` releases), so they are
driven the same way by the Qt view and by tests without Qt.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..labels import PADDING_BELOW_HU, Label
from ._editor import LabelEditor, Mode, PaintOptions

Point = tuple[float, float, float]  # (z, y, x) in voxel coordinates


@functools.lru_cache(maxsize=64)
def ball_offsets(
    radius_mm: float, spacing_zyx: tuple[float, float, float], plane_axis: int | None
) -> np.ndarray:
    """Integer (dz, dy, dx) offsets of voxels within ``radius_mm`` of the centre voxel.

    ``plane_axis`` None gives a 3D sphere; 0, 1 or 2 a 2D disk in the plane normal to that axis
    (0 axial, 1 coronal, 2 sagittal). A radius below half a voxel still gives the centre voxel.
    """
    r = max(float(radius_mm), 0.0)
    half = [int(np.floor(r / s)) for s in spacing_zyx]
    if plane_axis is not None:
        half[plane_axis] = 0
    axes = [np.arange(-h, h + 1) for h in half]
    dz, dy, dx = np.meshgrid(*axes, indexing="ij")
    sz, sy, sx = spacing_zyx
    d2 = (dz * sz) ** 2 + (dy * sy) ** 2 + (dx * sx) ** 2
    inside = d2 <= r * r + 1e-9
    off = np.stack([dz[inside], dy[inside], dx[inside]], axis=1).astype(np.int64)
    off.setflags(write=False)
    return off


def brush_indices(
    center: Point,
    radius_mm: float,
    shape: Sequence[int],
    spacing_zyx: tuple[float, float, float],
    plane_axis: int | None = 0,
) -> np.ndarray:
    """Flat indices of a disk (``plane_axis`` 0/1/2) or sphere (None) around a voxel position."""
    c = np.rint(np.asarray(center, dtype=float)).astype(np.int64)
    off = ball_offsets(float(radius_mm), tuple(float(s) for s in spacing_zyx), plane_axis)
    pts = off + c
    nz, ny, nx = shape
    ok = (
        (pts[:, 0] >= 0) & (pts[:, 0] < nz) & (pts[:, 1] >= 0) & (pts[:, 1] < ny)
        & (pts[:, 2] >= 0) & (pts[:, 2] < nx)
    )
    pts = pts[ok]
    return (pts[:, 0] * ny + pts[:, 1]) * nx + pts[:, 2]


def segment_points(p0: Point, p1: Point, step_vox: float) -> list[Point]:
    """Points from p0 (excluded) to p1 (included) at most ``step_vox`` apart: a drag leaves no gaps."""
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    n = max(1, int(np.ceil(np.linalg.norm(b - a) / max(step_vox, 0.5))))
    return [tuple(a + (b - a) * (k / n)) for k in range(1, n + 1)]  # type: ignore[misc]


def brush_tool(
    editor: LabelEditor,
    mode: Mode,
    radius_mm: float,
    spacing_zyx: tuple[float, float, float],
    plane_axis: int | None = 0,
    options: PaintOptions | None = None,
) -> Generator[int, Point | None, None]:
    """A brush stroke as a generator: ``next()`` starts, ``send(point)`` paints, ``send(None)`` ends.

    Each ``send`` yields the number of voxels changed by that dab (listeners already updated);
    the whole drag is one undo step.
    """
    opts = options or PaintOptions()
    step = max(radius_mm / min(spacing_zyx) * 0.5, 0.5)
    editor.begin_stroke(f"brush {mode.value}")
    last: Point | None = None
    changed = 0
    try:
        while True:
            p = yield changed
            if p is None:
                break
            pts = [p] if last is None else segment_points(last, p, step)
            idx = np.concatenate(
                [brush_indices(q, radius_mm, editor.shape, spacing_zyx, plane_axis) for q in pts]
            )
            changed = editor.paint(np.unique(idx), mode, opts)
            last = p
    finally:
        editor.end_stroke()


def _bbox_slices(mask: np.ndarray, margin: int = 1) -> tuple[slice, ...] | None:
    found = ndi.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        return None
    return tuple(
        slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(found[0], mask.shape, strict=False)
    )


def _flat_from_local(local: np.ndarray, box: tuple[slice, ...], shape: Sequence[int]) -> np.ndarray:
    zz, yy, xx = np.nonzero(local)
    nz, ny, nx = shape
    return ((zz + box[0].start) * ny + (yy + box[1].start)) * nx + (xx + box[2].start)


def connected_region(
    hu: np.ndarray,
    labels: np.ndarray,
    seed: Point,
    hu_range: tuple[float, float],
    *,
    plane_axis: int | None = None,
    inside_lung: bool = True,
    max_radius_vox: int | Sequence[int] | None = None,
    radius_mm: float | None = None,
    spacing_zyx: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """Flat indices of the region connected (6-neighbours) to ``seed`` with lo <= HU < hi.

    ``plane_axis`` restricts it to the seed's slice; ``inside_lung`` to labels 1-3; padding
    never belongs. ``max_radius_vox`` bounds the search box (for speed on large volumes);
    ``radius_mm`` (with ``spacing_zyx``) bounds the region itself to a ball around the seed, so a
    click in a wide low-contrast area cannot flood the lung. Empty when the seed is out of range.
    """
    c = tuple(int(round(v)) for v in seed)
    shape = hu.shape
    if radius_mm is not None:
        sp = spacing_zyx or (1.0, 1.0, 1.0)
        reach = [int(np.floor(radius_mm / float(x))) for x in sp]
        if max_radius_vox is not None:
            mr = [int(max_radius_vox)] * 3 if np.ndim(max_radius_vox) == 0 else list(max_radius_vox)  # type: ignore[arg-type]
            reach = [min(a, int(b)) for a, b in zip(reach, mr, strict=False)]
        max_radius_vox = reach
    if not all(0 <= ci < n for ci, n in zip(c, shape, strict=False)):
        return np.zeros(0, np.int64)
    if max_radius_vox is not None and np.ndim(max_radius_vox) == 0:
        max_radius_vox = (int(max_radius_vox),) * 3  # type: ignore[arg-type]
    box = []
    for ax, (ci, n) in enumerate(zip(c, shape, strict=False)):
        if plane_axis is not None and ax == plane_axis:
            box.append(slice(ci, ci + 1))
        elif max_radius_vox is not None:
            r = int(max_radius_vox[ax])  # type: ignore[index]
            box.append(slice(max(ci - r, 0), min(ci + r + 1, n)))
        else:
            box.append(slice(0, n))
    box_t = tuple(box)
    h = hu[box_t]
    lo, hi = hu_range
    mask = (h >= lo) & (h < hi) & (h >= PADDING_BELOW_HU)
    if inside_lung:
        mask &= labels[box_t] != Label.OUTSIDE
    if radius_mm is not None:
        sp = spacing_zyx or (1.0, 1.0, 1.0)
        grids = np.ogrid[tuple(slice(b.start - ci, b.stop - ci) for b, ci in zip(box_t, c, strict=False))]
        d2 = sum((g * float(x)) ** 2 for g, x in zip(grids, sp, strict=False))
        mask &= d2 <= float(radius_mm) ** 2 + 1e-9
    local_seed = tuple(ci - b.start for ci, b in zip(c, box_t, strict=False))
    if not mask[local_seed]:
        return np.zeros(0, np.int64)
    lab, _ = ndi.label(mask)
    return _flat_from_local(lab == lab[local_seed], box_t, shape)


def connected_lesion(
    labels: np.ndarray, seed: Point, *, plane_axis: int | None = None
) -> np.ndarray:
    """Flat indices of the lesion (labels 2 and 3 together, 26-connected) under ``seed``."""
    c = tuple(int(round(v)) for v in seed)
    if not all(0 <= ci < n for ci, n in zip(c, labels.shape, strict=False)):
        return np.zeros(0, np.int64)
    if labels[c] not in (Label.GGO, Label.CONSOLIDATION):
        return np.zeros(0, np.int64)
    box_t: tuple[slice, ...]
    if plane_axis is not None:
        box = [slice(0, n) for n in labels.shape]
        box[plane_axis] = slice(c[plane_axis], c[plane_axis] + 1)
        box_t = tuple(box)
    else:
        box_t = tuple(slice(0, n) for n in labels.shape)
    lesion = labels[box_t] >= Label.GGO
    bb = _bbox_slices(lesion, margin=0)
    assert bb is not None
    box_t = tuple(slice(b.start + s.start, b.start + s.stop) for b, s in zip(box_t, bb, strict=False))
    lesion = labels[box_t] >= Label.GGO
    lab, _ = ndi.label(lesion, structure=np.ones((3, 3, 3), bool))
    local_seed = tuple(ci - b.start for ci, b in zip(c, box_t, strict=False))
    return _flat_from_local(lab == lab[local_seed], box_t, labels.shape)


def _signed_distance(mask2d: np.ndarray) -> np.ndarray:
    """Negative inside, positive outside (in pixels): the basis of shape-based interpolation."""
    if not mask2d.any():
        return np.full(mask2d.shape, np.inf)
    inside = ndi.distance_transform_edt(mask2d)
    outside = ndi.distance_transform_edt(~mask2d)
    return np.where(mask2d, -inside + 0.5, outside - 0.5)


def slice_coords(flat_idx: np.ndarray, shape: Sequence[int], axis: int) -> np.ndarray:
    """The coordinate along ``axis`` of flat C-order indices."""
    nz, ny, nx = shape
    f = np.asarray(flat_idx, dtype=np.int64)
    return (f // (ny * nx), (f // nx) % ny, f % nx)[axis]


def slice_mask(flat_idx: np.ndarray, shape: Sequence[int], axis: int, s: int) -> np.ndarray:
    """2D mask (in the slice's index order) of the flat indices lying on slice ``s`` of ``axis``."""
    dims = [int(n) for i, n in enumerate(shape) if i != axis]
    out = np.zeros(dims, dtype=bool)
    f = np.asarray(flat_idx, dtype=np.int64)
    zyx = np.unravel_index(f, tuple(int(n) for n in shape))
    on = zyx[axis] == s
    other = [zyx[i][on] for i in range(3) if i != axis]
    out[other[0], other[1]] = True
    return out


def _plane(arr: np.ndarray, axis: int, s: int) -> np.ndarray:
    sl: list[Any] = [slice(None)] * 3
    sl[axis] = s
    return arr[tuple(sl)]


def key_object(labels: np.ndarray, axis: int, s: int, painted: np.ndarray, label: int | None) -> np.ndarray:
    """The object the reader painted on a key slice, as a 2D mask.

    ``painted`` are the flat indices the stroke changed. Painting: the connected pieces
    (8-neighbours) of ``label`` on that slice that the stroke touched, so a lesion extended by the
    stroke counts whole, and other lesions on the slice do not. Erasing (``label`` None): what the
    stroke erased.
    """
    seeds = slice_mask(painted, labels.shape, axis, s)
    if label is None or not seeds.any():
        return seeds
    same = _plane(labels, axis, s) == label
    lab, _ = ndi.label(same, structure=np.ones((3, 3), bool))
    hit = np.unique(lab[seeds & same])
    hit = hit[hit > 0]
    return np.isin(lab, hit) if hit.size else seeds & same


def interpolate_masks(
    ka: np.ndarray, kb: np.ndarray, shape: Sequence[int], axis: int, a: int, b: int
) -> np.ndarray:
    """Flat indices of the shape-based interpolation of 2D masks ``ka`` (slice a) and ``kb``
    (slice b) on the slices strictly between (Raya and Udupa 1990: signed distance maps of the two
    key shapes blended linearly; the blend's inside is the shape)."""
    if a > b:
        a, b, ka, kb = b, a, kb, ka
    if b - a < 2 or (not ka.any() and not kb.any()):
        return np.zeros(0, np.int64)
    bb = _bbox_slices(ka | kb, margin=2)
    assert bb is not None
    ka, kb = ka[bb], kb[bb]
    da, db = _signed_distance(ka), _signed_distance(kb)
    # An empty key slice shrinks the other shape to nothing at its end.
    if not ka.any():
        da = np.full(ka.shape, float(np.abs(db).max() + 1))
    if not kb.any():
        db = np.full(kb.shape, float(np.abs(da).max() + 1))
    out = []
    other = [ax for ax in range(3) if ax != axis]
    for k in range(a + 1, b):
        t = (k - a) / (b - a)
        m = (1 - t) * da + t * db <= 0
        if not m.any():
            continue
        r, c = np.nonzero(m)
        coords: list[Any] = [None, None, None]
        coords[axis] = np.full(r.size, k)
        coords[other[0]] = r + bb[0].start
        coords[other[1]] = c + bb[1].start
        out.append(np.ravel_multi_index(tuple(coords), tuple(shape)))  # type: ignore[arg-type]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def interpolate_object(
    labels: np.ndarray,
    axis: int,
    a: int,
    painted_a: np.ndarray,
    b: int,
    painted_b: np.ndarray,
    label: int | None,
) -> np.ndarray:
    """Candidates to interpolate the object painted on key slices ``a`` and ``b`` (see
    :func:`key_object`; ``label`` None for an erased object). Apply them with the painted label
    and ``PaintOptions(only_labels=(Label.LUNG,))`` (or with :attr:`Mode.ERASE`), so nothing but
    plain lung (or, erasing, the lesion inside the shape) changes."""
    ka = key_object(labels, axis, a, painted_a, label)
    kb = key_object(labels, axis, b, painted_b, label)
    return interpolate_masks(ka, kb, labels.shape, axis, a, b)


def interpolate_between(
    labels: np.ndarray, label: int, axis: int, a: int, b: int
) -> np.ndarray:
    """Flat indices to paint ``label`` on the slices strictly between slices ``a`` and ``b``,
    from every piece of ``label`` on the two slices (the window uses :func:`interpolate_object`,
    which takes only the object painted).

    Shape-based interpolation (Raya and Udupa 1990): the signed distance maps of the label on the
    two key slices are blended linearly, and the blend's inside is the interpolated shape.
    """
    sl: list[Any] = [slice(None)] * 3
    sl[axis] = int(a)
    ka = labels[tuple(sl)] == label
    sl[axis] = int(b)
    kb = labels[tuple(sl)] == label
    return interpolate_masks(ka, kb, labels.shape, axis, int(a), int(b))
