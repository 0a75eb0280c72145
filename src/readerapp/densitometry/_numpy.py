# mypy: disable-error-code="assignment,name-defined"
"""CPU densitometry: one fused pass over the volume, compiled with Numba where available.

A pure-NumPy path needs several passes and temporaries (mask, bin index, bincount), which on a
512x512x600 scan costs over a second; the Numba kernel reads each voxel once, in parallel over
chunks of the volume with private tables, and so runs near memory bandwidth. Without Numba the
chunked NumPy path gives the same integers, more slowly.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np

from ..labels import BIN_EDGES_HU, N_BINS
from .table import FINE_HI, FINE_LO, N_FINE, N_LABELS, DensityTable, bin_index

log = logging.getLogger(__name__)

E0, E1, E2 = BIN_EDGES_HU

if getattr(sys, "frozen", False) and "NUMBA_CACHE_DIR" not in os.environ:
    # An installed bundle's own folder is read-only: keep compiled kernels in the user's cache.
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(
        os.path.expanduser("~"), ".cache", "readerapp", "numba"
    )

try:  # Numba is a dependency, but keep the core usable (and testable) without it.
    import numba

    _HAVE_NUMBA = os.environ.get("READERAPP_NO_NUMBA", "") == ""
except Exception:  # pragma: no cover - exercised only where numba is missing
    numba = None
    _HAVE_NUMBA = False


def _kernel_py(hu, lab, lab64, nchunks):  # type: ignore[no-untyped-def]
    # lab64 views the labels eight at a time: a zero word (outside the lungs, most of a chest
    # CT) is skipped without touching its HU values, which roughly halves the memory traffic.
    nwords = lab64.size
    counts = np.zeros((nchunks, N_LABELS, N_BINS), np.int64)
    sums = np.zeros((nchunks, N_LABELS, N_BINS), np.int64)
    fine = np.zeros((nchunks, N_LABELS, N_FINE), np.int64)
    step = (nwords + nchunks - 1) // nchunks
    for c in numba.prange(nchunks):  # type: ignore[union-attr]
        w0 = c * step
        w1 = min(nwords, w0 + step)
        for w in range(w0, w1):
            if lab64[w] == 0:
                continue
            for i in range(w * 8, w * 8 + 8):
                _count_one(hu, lab, i, counts, sums, fine, c)
    # The tail that does not fill a whole word.
    for i in range(nwords * 8, hu.size):
        _count_one(hu, lab, i, counts, sums, fine, 0)
    return counts.sum(axis=0), sums.sum(axis=0), fine.sum(axis=0)


def _count_one_py(hu, lab, i, counts, sums, fine, c):  # type: ignore[no-untyped-def]
    lab_i = lab[i]
    if lab_i == 0 or lab_i >= N_LABELS:
        return
    h = np.int64(hu[i])
    if h < E0:
        b = 0
    elif h < E1:
        b = 1
    elif h < E2:
        b = 2
    else:
        b = 3
    counts[c, lab_i, b] += 1
    sums[c, lab_i, b] += h
    k = h - FINE_LO
    if k < 0:
        k = 0
    elif k >= N_FINE:
        k = N_FINE - 1
    fine[c, lab_i, k] += 1


def _compile(cache: bool):  # type: ignore[no-untyped-def]
    global _count_one
    _count_one = numba.njit(inline="always", cache=cache, nogil=True)(_count_one_py)
    return numba.njit(parallel=True, cache=cache, nogil=True)(_kernel_py)


_kernel = None
if _HAVE_NUMBA:
    try:
        _kernel = _compile(cache=True)
    except Exception as exc:  # no writable cache location: compile per process instead
        log.debug("numba cache unavailable (%s); compiling without cache", exc)
        _kernel = _compile(cache=False)


def table_numpy(hu: np.ndarray, labels: np.ndarray, *, chunk_voxels: int = 1 << 22) -> DensityTable:
    """The density table of a whole volume on the CPU."""
    hu_f = np.ascontiguousarray(hu).reshape(-1)
    lab_f = np.ascontiguousarray(labels).reshape(-1)
    if _kernel is not None:
        nwords = lab_f.size // 8
        lab64 = lab_f[: nwords * 8].view(np.uint64) if lab_f.flags.c_contiguous else None
        if lab64 is None:  # pragma: no cover - ascontiguousarray above makes this unreachable
            lab64 = np.ascontiguousarray(lab_f[: nwords * 8]).view(np.uint64)
        nchunks = max(1, min(256, nwords // (1 << 13)))
        counts, sums, fine = _kernel(hu_f, lab_f, lab64, nchunks)
        return DensityTable(counts, sums, fine)
    return _table_chunked(hu_f, lab_f, chunk_voxels)


def _table_chunked(hu_f: np.ndarray, lab_f: np.ndarray, chunk: int) -> DensityTable:
    t = DensityTable()
    for start in range(0, hu_f.size, chunk):
        lab = lab_f[start:start + chunk]
        keep = (lab > 0) & (lab < N_LABELS)
        if not keep.any():
            continue
        add_voxels(t, hu_f[start:start + chunk][keep], lab[keep], +1)
    return t


def add_voxels(t: DensityTable, hu: np.ndarray, labels: np.ndarray, sign: int) -> None:
    """Add (sign=+1) or remove (sign=-1) a set of labelled voxels from a table, in place.

    Voxels labelled 0 (outside) or out of range are ignored, as in the full pass.
    """
    keep = (labels > 0) & (labels < N_LABELS)
    if not keep.all():
        hu, labels = hu[keep], labels[keep]
    if hu.size == 0:
        return
    h = hu.astype(np.int64)
    key = labels.astype(np.int64) * N_BINS + bin_index(h)
    t.counts += sign * np.bincount(key, minlength=N_LABELS * N_BINS).reshape(N_LABELS, N_BINS)
    # float64 sums of integers are exact below 2**53 (|HU| <= 32768, so over 2**37 voxels).
    sums = np.rint(np.bincount(key, weights=h, minlength=N_LABELS * N_BINS)).astype(np.int64)
    t.hu_sums += sign * sums.reshape(N_LABELS, N_BINS)
    fkey = labels.astype(np.int64) * N_FINE + (np.clip(h, FINE_LO, FINE_HI) - FINE_LO)
    t.fine += sign * np.bincount(fkey, minlength=N_LABELS * N_FINE).reshape(N_LABELS, N_FINE)


def warm_up() -> None:
    """Compile the kernel now (a second or two once, cached on disk) rather than mid-stroke."""
    if _kernel is not None:
        lab = np.ones(16, np.uint8)
        _kernel(np.zeros(16, np.int16), lab, lab.view(np.uint64), 1)
