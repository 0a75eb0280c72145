"""Corrections that need interpolation: undoing a gantry tilt and evening out slice spacing.

Both interpolate linearly and keep padding honest: an output voxel that draws on any padding voxel
is padding too, so interpolation never invents tissue, air or lung at the field-of-view edge.
"""

from __future__ import annotations

import numpy as np

from ..labels import PADDING_BELOW_HU
from ..volume import PADDING_HU

_EPS = 1e-6


def deshear(hu: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shift each slice in-plane by ``shifts[k] = (rows, columns)`` pixels (linear interpolation)."""
    from scipy import ndimage  # only tilted series need it; keeps importing the loader light

    out = np.empty_like(hu)
    for k in range(hu.shape[0]):
        s = tuple(float(v) for v in shifts[k])
        if abs(s[0]) < 1e-3 and abs(s[1]) < 1e-3:
            out[k] = hu[k]
            continue
        pad = (hu[k] < PADDING_BELOW_HU).astype(np.float32)
        moved = ndimage.shift(hu[k].astype(np.float32), s, order=1, mode="constant", cval=float(PADDING_HU))
        moved_pad = ndimage.shift(pad, s, order=1, mode="constant", cval=1.0)
        res = np.rint(moved)
        res[moved_pad > _EPS] = PADDING_HU
        out[k] = res.astype(np.int16)
    return out


def resample_z(hu: np.ndarray, positions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Slices at ascending ``positions`` (mm) linearly interpolated onto ``targets`` (mm)."""
    out = np.empty((len(targets),) + hu.shape[1:], dtype=np.int16)
    n = len(positions)
    for j, t in enumerate(targets):
        k = int(np.clip(np.searchsorted(positions, t, side="right") - 1, 0, n - 2))
        w = float((t - positions[k]) / (positions[k + 1] - positions[k]))
        w = min(max(w, 0.0), 1.0)
        if w < _EPS:
            out[j] = hu[k]
            continue
        if w > 1 - _EPS:
            out[j] = hu[k + 1]
            continue
        a = hu[k].astype(np.float32)
        b = hu[k + 1].astype(np.float32)
        res = np.rint(a * (1 - w) + b * w)
        pad = (hu[k] < PADDING_BELOW_HU) | (hu[k + 1] < PADDING_BELOW_HU)
        res[pad] = PADDING_HU
        out[j] = res.astype(np.int16)
    return out
