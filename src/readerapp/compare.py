"""Linking two scans of one patient (baseline and follow-up) slice by slice by patient position.

Each axial slice has a position along the patient's head-foot axis (mm, from the DICOM origin and
direction). Scrolling one scan shows, in the other, the slice nearest to the same position, plus
an offset the reader sets when the table position differs between visits (scroll one side alone,
then link again: :meth:`SliceLink.relink`).
"""

from __future__ import annotations

import numpy as np

from .volume import CTVolume


def slice_positions(volume: CTVolume) -> np.ndarray:
    """Patient position (mm) of every axial slice along the scan's slice normal in LPS, signed
    so that it increases towards the head (S), whatever the slice order in the file."""
    d = np.asarray(volume.direction, float).reshape(3, 3)
    z_dir = d[:, 2]  # the direction of increasing slice index, in LPS
    origin = np.asarray(volume.origin, float)
    k = np.arange(volume.shape[0], dtype=float)
    pts = origin[None, :] + (k * volume.spacing[2])[:, None] * z_dir[None, :]
    return pts[:, 2]  # LPS z: + is superior


class SliceLink:
    """Maps slice indices of scan A to scan B (and back) by patient position plus an offset."""

    def __init__(self, a: CTVolume, b: CTVolume, offset_mm: float = 0.0) -> None:
        self.pos_a = slice_positions(a)
        self.pos_b = slice_positions(b)
        #: Added to A's position to get B's (follow-up table shift); 0 when the scans agree.
        self.offset_mm = float(offset_mm)
        self.tol_a = max(float(a.spacing[2]), 1e-6) / 2 + 1e-6
        self.tol_b = max(float(b.spacing[2]), 1e-6) / 2 + 1e-6

    @staticmethod
    def _nearest(positions: np.ndarray, p: float, tol: float) -> int | None:
        i = int(np.argmin(np.abs(positions - p)))
        return i if abs(float(positions[i]) - p) <= tol else None

    def b_for_a(self, index_a: int) -> int | None:
        """The slice of B at A's slice position (None when B does not cover it)."""
        return self._nearest(self.pos_b, float(self.pos_a[index_a]) + self.offset_mm, self.tol_b)

    def a_for_b(self, index_b: int) -> int | None:
        return self._nearest(self.pos_a, float(self.pos_b[index_b]) - self.offset_mm, self.tol_a)

    def relink(self, index_a: int, index_b: int) -> None:
        """Declare that these two slices show the same anatomy (sets the offset)."""
        self.offset_mm = float(self.pos_b[index_b] - self.pos_a[index_a])
