"""Live densitometry: endpoints kept current from the voxels an edit changed, not the volume.

The density table is additive, so an edit that relabels voxels ``idx`` from ``old`` to ``new``
changes it by (table of new) - (table of old) over just those voxels: a brush stroke of a few
thousand voxels costs microseconds whatever the scan size, and the result equals a scratch
computation exactly (integers throughout). With the CuPy backend the HU volume lives on the GPU
and the gather and bincounts run there.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module, resolve_backend
from ..labels import BIN_EDGES_HU, N_BINS
from .table import FINE_HI, FINE_LO, N_FINE, N_LABELS, DensityTable, Endpoints, bin_index


class DensityAccumulator:
    """The density table of one (CT, label map) pair, updated edit by edit."""

    def __init__(
        self,
        hu: np.ndarray,
        labels: np.ndarray,
        backend: str = "auto",
        voxel_volume_ml: float = 1.0,
    ) -> None:
        from . import compute_table

        if hu.shape != labels.shape:
            raise ValueError(f"CT {hu.shape} and label map {labels.shape} differ in shape")
        self.backend = resolve_backend(backend)
        self.voxel_volume_ml = float(voxel_volume_ml)
        self._xp = array_module(self.backend)
        self._hu_flat = self._xp.asarray(np.ascontiguousarray(hu).reshape(-1))
        self.table = compute_table(self._hu_flat, labels, backend=self.backend)
        self.n_updates = 0

    def apply(self, flat_idx: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        """Account for voxels ``flat_idx`` (C-order) relabelled from ``old`` to ``new``."""
        if len(flat_idx) == 0:
            return
        xp = self._xp
        idx = xp.asarray(flat_idx, dtype=xp.int64)
        h = self._hu_flat[idx].astype(xp.int64)
        binx = bin_index(h).astype(xp.int64)
        fine_k = xp.clip(h, FINE_LO, FINE_HI) - FINE_LO
        # New labels add, old labels remove: one bincount per table over both halves.
        lab = xp.concatenate((xp.asarray(new), xp.asarray(old))).astype(xp.int64)
        valid = (lab > 0) & (lab < N_LABELS)
        lab_v = xp.where(valid, lab, 0)
        w = valid.astype(xp.int64)
        w[len(flat_idx):] *= -1
        h2 = xp.concatenate((h, h))
        key = lab_v * N_BINS + xp.concatenate((binx, binx))
        d_counts = xp.bincount(key, weights=w, minlength=N_LABELS * N_BINS)
        d_sums = xp.bincount(key, weights=(w * h2).astype(xp.float64), minlength=N_LABELS * N_BINS)
        d_fine = xp.bincount(
            lab_v * N_FINE + xp.concatenate((fine_k, fine_k)), weights=w, minlength=N_LABELS * N_FINE
        )
        # Row 0 (outside) collects the masked-out voxels with weight 0; keep it zero.
        t = self.table
        t.counts += np.rint(_host(d_counts)).astype(np.int64).reshape(N_LABELS, N_BINS)
        t.hu_sums += np.rint(_host(d_sums)).astype(np.int64).reshape(N_LABELS, N_BINS)
        t.fine += np.rint(_host(d_fine)).astype(np.int64).reshape(N_LABELS, N_FINE)
        self.n_updates += 1

    def endpoints(self) -> Endpoints:
        return self.table.endpoints(self.voxel_volume_ml)

    def fine_histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """(bin edges in HU, counts per label 1..3): the 1-HU histogram for a density plot."""
        edges = np.arange(FINE_LO, FINE_HI + 2, dtype=np.int64)
        return edges, self.table.fine[1:].copy()

    def reset(self, labels: np.ndarray) -> None:
        """Recompute from scratch (after loading a different label map)."""
        from . import compute_table

        self.table = compute_table(self._hu_flat, labels, backend=self.backend)


def _host(a) -> np.ndarray:  # type: ignore[no-untyped-def]
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def table_from_scratch(hu: np.ndarray, labels: np.ndarray) -> DensityTable:
    """Reference (slow, obvious) computation used by tests to check the fast paths."""
    t = DensityTable()
    hu64 = hu.astype(np.int64).ravel()
    lab = labels.ravel()
    for lv in range(1, N_LABELS):
        m = lab == lv
        h = hu64[m]
        b = np.digitize(h, BIN_EDGES_HU)
        for bi in range(N_BINS):
            hb = h[b == bi]
            t.counts[lv, bi] = hb.size
            t.hu_sums[lv, bi] = int(hb.sum())
        t.fine[lv] = np.bincount(np.clip(h, FINE_LO, FINE_HI) - FINE_LO, minlength=N_FINE)
    return t
