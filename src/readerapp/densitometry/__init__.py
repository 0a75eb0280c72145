"""Densitometry: PROTOCOL.md's endpoints from a CT and a label map, on NumPy or CuPy.

Both backends compute the same integer :class:`DensityTable` (counts and HU sums per label and
density bin), from which :class:`Endpoints` are derived; equal tables give equal endpoints, so
the backends agree exactly and live edits (:class:`DensityAccumulator`) match a scratch run.
"""

from __future__ import annotations

import numpy as np

from ..backend import resolve_backend
from .accumulator import DensityAccumulator, table_from_scratch
from .table import DensityTable, Endpoints

__all__ = [
    "DensityAccumulator",
    "DensityTable",
    "Endpoints",
    "compute_table",
    "compute_endpoints",
    "table_from_scratch",
]


def compute_table(hu, labels, backend: str = "auto") -> DensityTable:  # type: ignore[no-untyped-def]
    """The density table of a whole volume. ``hu`` int16 and ``labels`` uint8, same shape."""
    name = resolve_backend(backend)
    if name == "cupy":
        from ._cupy import table_cupy

        return table_cupy(hu, labels)
    from ._numpy import table_numpy

    if not isinstance(hu, np.ndarray):  # a CuPy array handed to the NumPy backend
        hu = hu.get()
    if not isinstance(labels, np.ndarray):
        labels = labels.get()
    return table_numpy(hu, labels)


def compute_endpoints(
    hu: np.ndarray, labels: np.ndarray, voxel_volume_ml: float, backend: str = "auto"
) -> Endpoints:
    return compute_table(hu, labels, backend).endpoints(voxel_volume_ml)
