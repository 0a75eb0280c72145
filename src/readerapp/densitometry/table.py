"""The density table: the one exact, additive summary every endpoint is derived from.

For each label (1..3) and each density bin of PROTOCOL.md the table holds the voxel count and the
integer sum of HU, plus a 1-HU histogram for plotting. All entries are int64, so tables from
different backends, or from a scratch computation and a chain of incremental edits, are equal
exactly, and the endpoints derived from equal tables are equal to the last bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import endpoints as catalogue
from ..errors import SeriesError
from ..labels import BIN_EDGES_HU, N_BINS, Label

N_LABELS = 4  # rows 0..3; row 0 (outside) stays zero
#: Fine histogram range for plots: HU clipped to [FINE_LO, FINE_HI], one bin per HU.
FINE_LO, FINE_HI = -1024, 1023
N_FINE = FINE_HI - FINE_LO + 1


@dataclass
class DensityTable:
    counts: np.ndarray = field(default_factory=lambda: np.zeros((N_LABELS, N_BINS), np.int64))
    hu_sums: np.ndarray = field(default_factory=lambda: np.zeros((N_LABELS, N_BINS), np.int64))
    fine: np.ndarray = field(default_factory=lambda: np.zeros((N_LABELS, N_FINE), np.int64))

    def copy(self) -> DensityTable:
        return DensityTable(self.counts.copy(), self.hu_sums.copy(), self.fine.copy())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DensityTable):
            return NotImplemented
        return (
            np.array_equal(self.counts, other.counts)
            and np.array_equal(self.hu_sums, other.hu_sums)
            and np.array_equal(self.fine, other.fine)
        )

    def endpoints(self, voxel_volume_ml: float) -> Endpoints:
        return Endpoints.from_table(self, voxel_volume_ml)


def bin_index(hu: np.ndarray) -> np.ndarray:
    """Density bin (0..3) of each HU value; works for NumPy and CuPy arrays alike."""
    e0, e1, e2 = BIN_EDGES_HU
    return (hu >= e0).astype(np.int8) + (hu >= e1) + (hu >= e2)


def _pct(part: int, whole: int) -> float | None:
    """Percent of ``whole``; None (never 0) when ``whole`` is empty: a proportion of nothing."""
    return 100.0 * part / whole if whole else None


@dataclass(frozen=True)
class Endpoints:
    """PROTOCOL.md's per-scan endpoints, in its units (mL, percent of lung volume, HU, g).

    The fields are :data:`readerapp.endpoints.KEYS`. A value that is undefined (a percentage of
    a zero lung volume, the mean HU of no voxels) is None, and ``null_reasons`` says why, under
    the value's key (a histogram bin's under ``density_histogram.<bin>.<field>``).
    """

    lung_volume_ml: float
    lesion_volume_ml: float
    lesion_pct: float | None
    ggo_volume_ml: float
    ggo_pct: float | None
    consolidation_volume_ml: float
    consolidation_pct: float | None
    lesion_weight_hu_voxel: int
    lesion_weight_hu_ml: float
    lesion_mass_g: float
    density_histogram: tuple[dict[str, Any], ...]
    mean_lung_hu: float | None
    #: Voxel counts behind the volumes, for exact comparisons.
    voxel_counts: dict[str, int]
    null_reasons: dict[str, str] = field(default_factory=dict)

    KEYS = catalogue.KEYS

    @classmethod
    def from_table(cls, t: DensityTable, voxel_volume_ml: float) -> Endpoints:
        vml = float(voxel_volume_ml)
        if not (math.isfinite(vml) and vml > 0):
            raise SeriesError(f"voxel volume {voxel_volume_ml!r} mL is not a positive finite number: "
                              "the series' spacing cannot give volumes")
        per_label = t.counts.sum(axis=1)
        n_lung = int(per_label[Label.LUNG:].sum())
        n_ggo = int(per_label[Label.GGO])
        n_cons = int(per_label[Label.CONSOLIDATION])
        n_lesion = n_ggo + n_cons
        lesion_sum = int(t.hu_sums[Label.GGO:].sum())
        lung_sum = int(t.hu_sums[Label.LUNG:].sum())
        reasons: dict[str, str] = {}
        bins = []
        for b, spec in enumerate(catalogue.BINS):
            n = int(t.counts[Label.LUNG:, b].sum())
            s = int(t.hu_sums[Label.LUNG:, b].sum())
            where = f"density_histogram.{spec.name}"
            if not n_lung:
                reasons[f"{where}.pct"] = catalogue.ZERO_LUNG_REASON
            if not n:
                reasons[f"{where}.mean_hu"] = catalogue.EMPTY_BIN_MEAN_REASON
            bins.append({
                "name": spec.name,
                "lower_hu": spec.lower_hu,
                "upper_hu": spec.upper_hu,
                "volume_ml": n * vml,
                "pct": _pct(n, n_lung),
                "voxels": n,
                "mean_hu": s / n if n else None,
            })
        if not n_lung:
            for k in ("lesion_pct", "ggo_pct", "consolidation_pct"):
                reasons[k] = catalogue.ZERO_LUNG_REASON
            reasons["mean_lung_hu"] = catalogue.EMPTY_LUNG_MEAN_REASON
        return cls(
            lung_volume_ml=n_lung * vml,
            lesion_volume_ml=n_lesion * vml,
            lesion_pct=_pct(n_lesion, n_lung),
            ggo_volume_ml=n_ggo * vml,
            ggo_pct=_pct(n_ggo, n_lung),
            consolidation_volume_ml=n_cons * vml,
            consolidation_pct=_pct(n_cons, n_lung),
            lesion_weight_hu_voxel=lesion_sum,
            lesion_weight_hu_ml=lesion_sum * vml,
            lesion_mass_g=(lesion_sum + 1000 * n_lesion) / 1000.0 * vml,
            density_histogram=tuple(bins),
            mean_lung_hu=lung_sum / n_lung if n_lung else None,
            voxel_counts={"lung": n_lung, "lesion": n_lesion, "ggo": n_ggo, "consolidation": n_cons},
            null_reasons=reasons,
        )

    def to_dict(self) -> dict[str, Any]:
        """Exactly PROTOCOL.md's keys (the catalogue's), JSON-ready, plus ``null_reasons``."""
        d = {k: getattr(self, k) for k in self.KEYS}
        d["density_histogram"] = [dict(b) for b in self.density_histogram]
        d[catalogue.NULL_REASONS_KEY] = dict(self.null_reasons)
        return d

    def difference(self, other: Endpoints) -> dict[str, float]:
        """self minus other for every scalar endpoint (auto vs corrected, reader vs reader)."""
        out: dict[str, float] = {}
        for k in catalogue.SCALAR_KEYS:
            a, b = getattr(self, k), getattr(other, k)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                out[k] = a - b
        return out
