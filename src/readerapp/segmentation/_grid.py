"""The coarse working grid and the few morphology primitives the classical method uses.

Morphology runs on a block-averaged grid (about 1.2-2 mm in-plane) because its cost grows with
the voxel count, and uses box-shaped min/max filters, which are separable in both
``scipy.ndimage`` and ``cupyx.scipy.ndimage`` and cost the same whatever their size. All functions
take the array module ``xp`` and the ndimage module ``ndi`` so the NumPy and CuPy paths are the
same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..labels import PADDING_BELOW_HU

#: 2-D (in-plane) connectivity inside a 3-D array: each slice is labelled on its own.
STRUCT_2D = np.zeros((3, 3, 3), bool)
STRUCT_2D[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
#: 3-D face connectivity.
STRUCT_3D = np.zeros((3, 3, 3), bool)
STRUCT_3D[1, 1, :] = STRUCT_3D[1, :, 1] = STRUCT_3D[:, 1, 1] = True


@dataclass(frozen=True)
class Grid:
    """Block factors (z, y, x) between the full grid and the coarse grid."""

    factors: tuple[int, int, int]
    full_shape: tuple[int, int, int]
    #: Coarse voxel size (z, y, x) in mm.
    spacing_zyx: tuple[float, float, float]

    @property
    def coarse_shape(self) -> tuple[int, int, int]:
        return tuple(-(-n // f) for n, f in zip(self.full_shape, self.factors, strict=True))  # type: ignore[return-value]

    def voxels(self, mm: float, axis: int) -> int:
        """Half-width in coarse voxels of a length in mm along one axis (at least 0)."""
        return max(0, int(round(mm / self.spacing_zyx[axis])))

    def box(self, radius_mm: float, in_plane_only: bool = False) -> tuple[int, int, int]:
        """Odd box size (z, y, x) reaching ``radius_mm`` from the centre (rounded to voxels)."""
        rz = 0 if in_plane_only else self.voxels(radius_mm, 0)
        return (2 * rz + 1, 2 * self.voxels(radius_mm, 1) + 1, 2 * self.voxels(radius_mm, 2) + 1)

    @property
    def coarse_voxel_mm3(self) -> float:
        return float(np.prod(self.spacing_zyx))


def choose_grid(shape: tuple[int, int, int], spacing_zyx: tuple[float, float, float],
                target_inplane_mm: float = 1.5, target_z_mm: float = 1.0) -> Grid:
    """Factors giving a coarse voxel near ``target`` mm (never finer than the data)."""
    sz, sy, sx = spacing_zyx
    fz = max(1, int(round(target_z_mm / sz)))
    fy = max(1, int(round(target_inplane_mm / sy)))
    fx = max(1, int(round(target_inplane_mm / sx)))
    return Grid((fz, fy, fx), shape, (sz * fz, sy * fy, sx * fx))


def downsample(xp: Any, hu: Any, grid: Grid) -> tuple[Any, Any]:
    """(block-mean HU as float32, block-contains-padding mask) on the coarse grid.

    Padding counts as air (-1024) in the mean, and a block with any padding voxel is padding,
    so nothing outside the field of view can become lung.
    """
    fz, fy, fx = grid.factors
    nz, ny, nx = grid.full_shape
    pz, py, px = (-nz) % fz, (-ny) % fy, (-nx) % fx
    if pz or py or px:
        hu = xp.pad(hu, ((0, pz), (0, py), (0, px)), mode="edge")
    acc = None
    pad = None
    for dz in range(fz):
        for dy in range(fy):
            for dx in range(fx):
                v = hu[dz::fz, dy::fy, dx::fx]
                p = v < PADDING_BELOW_HU
                vv = xp.maximum(v, -1024).astype(xp.float32)
                acc = vv if acc is None else acc + vv
                pad = p if pad is None else pad | p
    assert acc is not None and pad is not None
    acc /= float(fz * fy * fx)
    return acc, pad


def upsample(xp: Any, mask: Any, grid: Grid, out_shape: tuple[int, ...] | None = None) -> Any:
    """Nearest-neighbour copy of a coarse mask (or a crop of one) onto the full grid.

    ``out_shape`` is the full-resolution shape wanted (default: the whole volume); the
    blocks of the last coarse row or column are cut to fit.
    """
    fz, fy, fx = grid.factors
    nz, ny, nx = out_shape if out_shape is not None else grid.full_shape
    if (fz, fy, fx) == (1, 1, 1):
        return mask[:nz, :ny, :nx]
    cz, cy, cx = mask.shape
    big = xp.broadcast_to(mask[:, None, :, None, :, None], (cz, fz, cy, fy, cx, fx))
    big = big.reshape(cz * fz, cy * fy, cx * fx)
    return xp.ascontiguousarray(big[:nz, :ny, :nx])


def full_slices(box: tuple[slice, ...], grid: Grid) -> tuple[slice, ...]:
    """The full-resolution region covered by a coarse bounding box."""
    return tuple(
        slice(b.start * f, min(b.stop * f, n))
        for b, f, n in zip(box, grid.factors, grid.full_shape, strict=True)
    )


def _sl(axis: int, s: slice) -> tuple[slice, ...]:
    idx = [slice(None)] * 3
    idx[axis] = s
    return tuple(idx)


def _dilate_axis(m: Any, axis: int, r: int) -> Any:
    """OR over a window of 2r+1 along one axis (outside the array counts as False).

    Windows are built by doubling (van Herk style), so the cost grows with log(r); each step is
    a shifted OR, which NumPy and CuPy both run at memory speed. Source and target of each OR
    never overlap in memory (CuPy would not order such reads and writes).
    """
    n = m.shape[axis]
    if r <= 0:
        return m
    if r >= n - 1:  # every window spans the whole axis
        out = m.copy()
        out[...] = m.any(axis=axis, keepdims=True)
        return out
    if r <= 2:  # a few shifted ORs are cheaper than the doubling scheme
        out = m.copy()
        for k in range(1, r + 1):
            out[_sl(axis, slice(k, None))] |= m[_sl(axis, slice(0, n - k))]
            out[_sl(axis, slice(0, n - k))] |= m[_sl(axis, slice(k, None))]
        return out
    length = 2 * r + 1
    f = m.copy()  # f[i] = OR m[i .. i+w-1]
    w = 1
    while 2 * w <= length:
        if w < n:  # not in place: CuPy does not order overlapping reads and writes
            head_w = _sl(axis, slice(0, n - w))
            f[head_w] = f[head_w] | f[_sl(axis, slice(w, None))]
        w *= 2
    g = f.copy()  # g[i] = OR m[i .. i+length-1]
    rest = length - w
    if 0 < rest < n:
        g[_sl(axis, slice(0, n - rest))] |= f[_sl(axis, slice(rest, None))]
    out = g.copy()  # out[i] = g[i - r]
    out[_sl(axis, slice(r, None))] = g[_sl(axis, slice(0, n - r))] if r < n else False
    if r < n:
        # the first r positions see a window cut by the array's start: OR of m[0 .. i+r]
        head = m[_sl(axis, slice(0, min(n, 2 * r + 1)))]
        acc = head.copy()
        k = acc.shape[axis]
        for j in range(1, k):
            acc[_sl(axis, slice(j, j + 1))] |= acc[_sl(axis, slice(j - 1, j))]
        for i in range(min(r, n)):
            out[_sl(axis, slice(i, i + 1))] = acc[_sl(axis, slice(min(i + r, k - 1), min(i + r, k - 1) + 1))]
    return out


def dilate(ndi: Any, mask: Any, size: tuple[int, int, int]) -> Any:
    """Binary dilation with a box of odd ``size`` (z, y, x); outside the volume is background."""
    out = mask
    for axis, sz in enumerate(size):
        if sz > 1:
            out = _dilate_axis(out, axis, sz // 2)
    return out


def erode(ndi: Any, mask: Any, size: tuple[int, int, int]) -> Any:
    """Binary erosion with a box of odd ``size``; outside the volume counts as foreground."""
    if max(size) <= 1:
        return mask
    return ~dilate(ndi, ~mask, size)


def closing(ndi: Any, mask: Any, size: tuple[int, int, int]) -> Any:
    return erode(ndi, dilate(ndi, mask, size), size)


def opening(ndi: Any, mask: Any, size: tuple[int, int, int]) -> Any:
    return dilate(ndi, erode(ndi, mask, size), size)


def border_labels_2d(xp: Any, labels: Any) -> Any:
    """Labels touching the in-plane border of any slice (the z faces do not count)."""
    edges = xp.concatenate([
        labels[:, 0, :].ravel(), labels[:, -1, :].ravel(),
        labels[:, :, 0].ravel(), labels[:, :, -1].ravel(),
    ])
    return xp.unique(edges)


def holes_2d(xp: Any, ndi: Any, mask: Any, max_area_vox: float) -> Any:
    """Per-slice holes of ``mask`` (background not reaching the slice border) up to a size."""
    lab, n = ndi.label(~mask, structure=STRUCT_2D)
    if n == 0:
        return xp.zeros_like(mask)
    keep = xp.ones(n + 1, dtype=bool)
    keep[border_labels_2d(xp, lab)] = False
    keep[0] = False
    area = xp.bincount(lab.ravel(), minlength=n + 1)
    keep &= area <= max_area_vox
    return keep[lab]


def bbox(xp: Any, mask: Any, margin: tuple[int, int, int] = (0, 0, 0)) -> tuple[slice, ...] | None:
    """Bounding box of a mask (with a margin, clipped to the array), or None when empty."""
    out = []
    for ax in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != ax)
        idx = xp.flatnonzero(mask.any(axis=other))
        if idx.size == 0:
            return None
        lo = max(0, int(idx[0]) - margin[ax])
        hi = min(mask.shape[ax], int(idx[-1]) + 1 + margin[ax])
        out.append(slice(lo, hi))
    return tuple(out)


def _cross_step(xp: Any, m: Any, grow: bool) -> Any:
    """One in-plane step with the 3x3 cross: dilation (``grow``) or erosion (outside the array
    counts as background for a dilation and as foreground for an erosion)."""
    out = m.copy()
    if grow:
        out[:, 1:, :] |= m[:, :-1, :]
        out[:, :-1, :] |= m[:, 1:, :]
        out[:, :, 1:] |= m[:, :, :-1]
        out[:, :, :-1] |= m[:, :, 1:]
    else:
        out[:, 1:, :] &= m[:, :-1, :]
        out[:, :-1, :] &= m[:, 1:, :]
        out[:, :, 1:] &= m[:, :, :-1]
        out[:, :, :-1] &= m[:, :, 1:]
    return out


def octagon(radius_vox: int) -> tuple[int, int]:
    """(square half-width, diamond radius) whose Minkowski sum is the near-regular octagon of
    in-plane radius ``radius_vox``: a disk to within 8 %, where a square of that radius
    overshoots the disk by 41 % along its diagonals."""
    q = int(round(0.586 * radius_vox))
    return radius_vox - q, q


def opening_round(xp: Any, ndi: Any, mask: Any, radius_vox: int, rz_vox: int) -> Any:
    """Opening with an octagonal prism (in-plane radius ``radius_vox``, half-height
    ``rz_vox``): it removes what is thinner than the radius, like a box opening, but shaves
    almost nothing off a round object's rim, which a box opening cuts at its diagonals."""
    p, q = octagon(radius_vox)
    box = (2 * rz_vox + 1, 2 * p + 1, 2 * p + 1)
    out = erode(ndi, mask, box)
    for _ in range(q):
        out = _cross_step(xp, out, grow=False)
    for _ in range(q):
        out = _cross_step(xp, out, grow=True)
    return dilate(ndi, out, box)


def ball(spacing_zyx: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """Host bool structuring element: the voxels whose centre lies within ``radius_mm`` of the
    centre (anisotropic spacing), the radius rounded up by half an in-plane voxel as
    :meth:`Grid.voxels` rounds, so a wall of 2.5 mm on a 1.4 mm grid reaches two voxels along
    the axes but not into the box's corners."""
    sz, sy, sx = spacing_zyx
    reach = radius_mm + 0.5 * min(sy, sx)
    r = [int(reach // s) for s in spacing_zyx]
    zz, yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    return np.asarray((zz * sz) ** 2 + (yy * sy) ** 2 + (xx * sx) ** 2 <= reach ** 2 + 1e-9)


def dilate_ball(xp: Any, ndi: Any, mask: Any, grid: Grid, radius_mm: float) -> Any:
    """Binary dilation by a :func:`ball` of ``radius_mm``: a round wall, where a box dilation
    cuts rectangular notches (its corners reach 1.4-1.7 times as far as its sides). Runs on
    the mask's bounding box (a small mask such as the airway costs little)."""
    st = ball(grid.spacing_zyx, radius_mm)
    r = tuple(n // 2 for n in st.shape)
    box = bbox(xp, mask, r)  # type: ignore[arg-type]
    out = xp.zeros_like(mask)
    if box is None:
        return out
    out[box] = ndi.binary_dilation(mask[box], structure=xp.asarray(st))
    return out
