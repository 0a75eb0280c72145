"""The CT volume every part of ReaderApp passes around.

Arrays are (z, y, x), C-contiguous: ``hu`` int16 in Hounsfield units, padding outside the field of
view set to :data:`PADDING_HU`. Geometry follows ITK's conventions (LPS, spacing and origin in
(x, y, z) order, ``direction`` a 3x3 row-major matrix whose columns are the x, y, z axes) so a label
map written through SimpleITK lands on the series' grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .labels import HU_DTYPE, PADDING_BELOW_HU

#: The value padding voxels are set to on load, so every later stage can recognise them.
PADDING_HU = -3024


@dataclass
class CTVolume:
    hu: np.ndarray
    #: (x, y, z) voxel size in mm; z is the distance between slice positions.
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    series_uid: str = ""
    study_uid: str = ""
    #: Human-readable corrections made on load; they stay with every result from this volume.
    warnings: list[str] = field(default_factory=list)
    #: Non-identifying description (modality, manufacturer, kernel, slice thickness, files...).
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hu.ndim != 3:
            raise ValueError(f"CT volume must be 3-D (z, y, x), got shape {self.hu.shape}")
        if self.hu.dtype != HU_DTYPE:
            raise ValueError(f"CT volume must be int16 HU, got {self.hu.dtype}")
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(s) for s in self.origin)  # type: ignore[assignment]
        self.direction = tuple(float(s) for s in self.direction)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) voxels."""
        return tuple(int(s) for s in self.hu.shape)  # type: ignore[return-value]

    @property
    def voxel_volume_ml(self) -> float:
        sx, sy, sz = self.spacing
        return sx * sy * sz / 1000.0

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        sx, sy, sz = self.spacing
        return (sz, sy, sx)

    def padding_mask(self) -> np.ndarray:
        """Voxels outside the field of view (never air, never lung)."""
        return self.hu < PADDING_BELOW_HU

    def index_to_lps(self, zyx: tuple[float, float, float]) -> tuple[float, float, float]:
        """Patient (LPS, mm) position of a voxel index given as (z, y, x)."""
        d = np.asarray(self.direction).reshape(3, 3)
        ijk = np.array([zyx[2], zyx[1], zyx[0]], dtype=float) * np.asarray(self.spacing)
        p = np.asarray(self.origin) + d @ ijk
        return (float(p[0]), float(p[1]), float(p[2]))
