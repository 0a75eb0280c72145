"""Bronchovascular structures inside the lung: a multiscale Hessian tubularity (Frangi).

Vessels and bronchial walls share their HU with consolidation (and their partial-volume rim
with ground glass), so no threshold tells them apart; their shape does. A vessel is a bright
tube: at the scale of its radius the Hessian of the image has two strongly negative
eigenvalues across it and one near zero along it. A lesion is a blob or a slab (three or one
strong eigenvalue), and the inside of a consolidation is flat. Frangi's measure (Frangi et al.,
MICCAI 1998) turns the eigenvalues into a 0..1 tubularity; its maximum over scales from the
smallest vessel the coarse grid resolves to the hilar arteries marks the vessel tree.

Everything runs with ``xp``/``ndi`` (NumPy + scipy.ndimage or CuPy + cupyx.scipy.ndimage): the
second derivatives are Gaussian derivative filters (anisotropic voxels handled in mm), and the
eigenvalues of the 3x3 symmetric Hessian come from the closed-form trigonometric solution, only
at the voxels asked about, so the cost is the filtering.
"""

from __future__ import annotations

import math
from typing import Any

#: The six distinct Hessian entries, as derivative orders per axis (z, y, x).
_ORDERS = ((2, 0, 0), (0, 2, 0), (0, 0, 2), (1, 1, 0), (1, 0, 1), (0, 1, 1))


def eigvalsh3(xp: Any, a11: Any, a22: Any, a33: Any, a12: Any, a13: Any, a23: Any
              ) -> tuple[Any, Any, Any]:
    """Eigenvalues of symmetric 3x3 matrices given entry-wise, in ascending order.

    Closed form (trigonometric, after Smith 1961), float64 for accuracy; exact for diagonal
    matrices (where the off-diagonal norm is 0).
    """
    a11, a22, a33 = (v.astype(xp.float64) for v in (a11, a22, a33))
    a12, a13, a23 = (v.astype(xp.float64) for v in (a12, a13, a23))
    p1 = a12 * a12 + a13 * a13 + a23 * a23
    q = (a11 + a22 + a33) / 3.0
    b11, b22, b33 = a11 - q, a22 - q, a33 - q
    p2 = b11 * b11 + b22 * b22 + b33 * b33 + 2.0 * p1
    p = xp.sqrt(p2 / 6.0)
    safe = xp.where(p > 1e-12, p, 1.0)
    c11, c22, c33 = b11 / safe, b22 / safe, b33 / safe
    c12, c13, c23 = a12 / safe, a13 / safe, a23 / safe
    det = (c11 * (c22 * c33 - c23 * c23) - c12 * (c12 * c33 - c23 * c13)
           + c13 * (c12 * c23 - c22 * c13))
    r = xp.clip(det / 2.0, -1.0, 1.0)
    phi = xp.arccos(r) / 3.0
    e_hi = q + 2.0 * p * xp.cos(phi)
    e_lo = q + 2.0 * p * xp.cos(phi + 2.0 * math.pi / 3.0)
    e_mid = 3.0 * q - e_hi - e_lo
    return e_lo, e_mid, e_hi


def frangi_bright(xp: Any, l_lo: Any, l_mid: Any, l_hi: Any, *, alpha: float = 0.5,
                  beta: float = 0.5, c: float = 60.0) -> Any:
    """Frangi's vesselness for bright tubes from (ascending) eigenvalues; 0 where not a tube.

    Sorted by magnitude |a| <= |b| <= |c|: a bright tube has b, c strongly negative and a small.
    ``c`` is the structureness scale in scale-normalised HU (a vessel against aerated lung gives
    several hundred; noise in flat lung a few tens).
    """
    lam = xp.stack([l_lo, l_mid, l_hi])
    order = xp.argsort(xp.abs(lam), axis=0)
    la, lb, lc = (xp.take_along_axis(lam, order[k:k + 1], axis=0)[0] for k in range(3))
    abs_b, abs_c = xp.abs(lb), xp.abs(lc)
    ra = abs_b / xp.maximum(abs_c, 1e-9)
    rb = xp.abs(la) / xp.sqrt(xp.maximum(abs_b * abs_c, 1e-18))
    s2 = la * la + lb * lb + lc * lc
    v = ((1.0 - xp.exp(-(ra * ra) / (2 * alpha * alpha)))
         * xp.exp(-(rb * rb) / (2 * beta * beta))
         * (1.0 - xp.exp(-s2 / (2 * c * c))))
    return xp.where((lb < 0) & (lc < 0), v, 0.0).astype(xp.float32)


def tubularity(xp: Any, ndi: Any, img: Any, where: Any, spacing_zyx: tuple[float, float, float],
               sigmas_mm: tuple[float, ...], *, c: float = 60.0) -> Any:
    """Maximum over scales of Frangi's bright-tube measure, at the voxels of ``where``.

    ``img`` is a float32 image (HU, clipped by the caller so bone and air do not dominate);
    returns a float32 array shaped like ``img``, zero outside ``where``. Derivatives are taken
    in mm and normalised by sigma^2 (Lindeberg), so the scales compare. A large scale is
    computed on a block-averaged copy (its kernel needs no finer sampling than 1.5 voxels per
    sigma), so the hilar arteries' scale costs about what the smallest vessels' does.
    """
    out = xp.zeros(img.shape, dtype=xp.float32)
    idx = xp.nonzero(where)
    if int(idx[0].size) == 0:
        return out
    best = xp.zeros(idx[0].shape, dtype=xp.float32)
    for s_mm in sigmas_mm:
        fz, fy, fx = (max(1, int(s_mm / (1.5 * sp))) for sp in spacing_zyx)
        f = (fz, fy, fx)
        im = _block_mean(xp, img, f)
        sp_f = (spacing_zyx[0] * fz, spacing_zyx[1] * fy, spacing_zyx[2] * fx)
        at = tuple(i // k for i, k in zip(idx, f, strict=True)) if f != (1, 1, 1) else idx
        sig = (max(s_mm / sp_f[0], 0.5), max(s_mm / sp_f[1], 0.5), max(s_mm / sp_f[2], 0.5))
        h = _hessian_at(xp, ndi, im, sig, sp_f, s_mm, at)
        lo, mid, hi = eigvalsh3(xp, *h)
        best = xp.maximum(best, frangi_bright(xp, lo, mid, hi, c=c))
    out[idx] = best
    return out


def _block_mean(xp: Any, img: Any, f: tuple[int, int, int]) -> Any:
    """Mean over (fz, fy, fx) blocks; the last partial block along an axis is averaged too."""
    if f == (1, 1, 1):
        return img
    out = img
    for ax, k in enumerate(f):
        if k == 1:
            continue
        n = out.shape[ax]
        pad = (-n) % k
        if pad:
            widths = [(0, 0)] * 3
            widths[ax] = (0, pad)
            out = xp.pad(out, widths, mode="edge")
        shape = list(out.shape)
        shape[ax:ax + 1] = [shape[ax] // k, k]
        out = out.reshape(shape).mean(axis=ax + 1, dtype=xp.float32)
    return out


def _hessian_at(xp: Any, ndi: Any, img: Any, sig: tuple[float, float, float],
                spacing_zyx: tuple[float, float, float], s_mm: float, at: tuple[Any, ...]
                ) -> tuple[Any, ...]:
    """The six scale-normalised Hessian entries (zz, yy, xx, zy, zx, yx) at the points ``at``.

    Separable filtering shares passes: the image is filtered once along z for each derivative
    order, then along y, then x (15 one-dimensional passes instead of 18).
    """
    def g(a: Any, axis: int, order: int) -> Any:
        return ndi.gaussian_filter1d(a, sig[axis], axis=axis, order=order, mode="nearest",
                                     truncate=2.5)

    def norm(order: tuple[int, int, int]) -> float:
        scale = s_mm * s_mm
        for ax, o in enumerate(order):
            scale /= spacing_zyx[ax] ** o
        return scale

    res: dict[tuple[int, int, int], Any] = {}
    z0 = g(img, 0, 0)
    y0 = g(z0, 1, 0)
    res[(0, 0, 2)] = g(y0, 2, 2)[at]
    y1 = g(z0, 1, 1)
    res[(0, 1, 1)] = g(y1, 2, 1)[at]
    del y1
    res[(0, 2, 0)] = g(g(z0, 1, 2), 2, 0)[at]
    del z0, y0
    z1 = g(img, 0, 1)
    res[(1, 0, 1)] = g(g(z1, 1, 0), 2, 1)[at]
    res[(1, 1, 0)] = g(g(z1, 1, 1), 2, 0)[at]
    del z1
    res[(2, 0, 0)] = g(g(g(img, 0, 2), 1, 0), 2, 0)[at]
    return tuple(res[o] * xp.float32(norm(o)) for o in _ORDERS)
