"""One volume in, PROTOCOL.md's JSON out: the batch logic behind ``analyze`` and ``measure``.

The GUI, the study workflow and the command line all call these two functions, so a number
shown to a reader, stored with a read and exported for the statistician is computed one way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import __version__
from .densitometry import Endpoints, compute_table
from .errors import LabelMapError
from .labels import LABEL_DTYPE, Label
from .progress import ProgressFn, no_progress, scaled
from .volume import CTVolume


@dataclass
class AnalysisResult:
    volume: CTVolume
    labels: np.ndarray
    endpoints: Endpoints
    backend: str
    #: "auto" (the segmentation as proposed), "loaded" (a label map opened, not edited) or
    #: "corrected" (a label map edited or given by a reader).
    segmentation_source: str
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    labels_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        """PROTOCOL.md's endpoint keys at the top level, then where they came from."""
        v = self.volume
        out: dict[str, Any] = self.endpoints.to_dict()
        out.update(
            series_uid=v.series_uid,
            study_uid=v.study_uid,
            spacing=list(v.spacing),
            spacing_axes="x, y, z in mm (z: distance between slice positions)",
            shape=list(v.shape),
            shape_axes="slices, rows, columns",
            voxel_volume_ml=v.voxel_volume_ml,
            voxel_counts=dict(self.endpoints.voxel_counts),
            segmentation_source=self.segmentation_source,
            segmentation=self.provenance,
            calibration=self.calibration,
            warnings=list(v.warnings) + list(self.warnings),
            software="readerapp",
            software_version=__version__,
            backend=self.backend,
            timings=dict(self.timings),
        )
        if self.labels_path:
            out["labels_path"] = self.labels_path
        return out


def sanitize_labels(volume: CTVolume, labels: np.ndarray, warnings: list[str]) -> np.ndarray:
    """Refuse labels outside 0..3; drop any label on padding voxels (outside the field of view)."""
    if labels.shape != volume.shape:
        raise LabelMapError(f"label map shape {labels.shape} does not match CT {volume.shape}")
    if labels.size:  # check before the cast to uint8, which would wrap -1 to 255
        lo, hi = int(labels.min()), int(labels.max())
        bad = lo if lo < 0 else hi
        if lo < 0 or hi > max(Label):
            raise LabelMapError(f"label map holds value {bad}; expected 0..3")
    labels = np.ascontiguousarray(labels, dtype=LABEL_DTYPE)
    pad = volume.padding_mask()
    n_bad = int(np.count_nonzero(labels[pad])) if pad.any() else 0
    if n_bad:
        labels = labels.copy()
        labels[pad] = Label.OUTSIDE
        warnings.append(
            f"{n_bad} labelled voxels lie outside the scanner's field of view (padding) "
            "and were not counted"
        )
    return labels


def measure(
    volume: CTVolume,
    labels: np.ndarray,
    *,
    backend: str = "auto",
    source: str = "corrected",
    provenance: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    timings: dict[str, float] | None = None,
    warnings: list[str] | None = None,
    check_calibration: bool = True,
) -> AnalysisResult:
    """Endpoints of ``volume`` under a given label map.

    Without a ``calibration`` the scanner check runs here, unless ``check_calibration`` is False
    (the caller already ran it, and it could not give a result).
    """
    notes = list(warnings or [])
    labels = sanitize_labels(volume, labels, notes)
    t0 = time.perf_counter()
    table = compute_table(volume.hu, labels, backend=backend)
    from .backend import resolve_backend

    times = dict(timings or {})
    times["densitometry"] = time.perf_counter() - t0
    if calibration is None and check_calibration:
        calibration = _calibration(volume, labels, None, notes, times)
    return AnalysisResult(
        volume=volume,
        labels=labels,
        endpoints=table.endpoints(volume.voxel_volume_ml),
        backend=resolve_backend(backend),
        segmentation_source=source,
        timings=times,
        warnings=notes,
        provenance=dict(provenance or {}),
        calibration=calibration,
    )


def _calibration(
    volume: CTVolume,
    labels: np.ndarray,
    extras: dict[str, np.ndarray] | None,
    notes: list[str],
    times: dict[str, float],
) -> dict[str, Any] | None:
    try:
        from .calibration import calibration_check
    except ImportError:
        return None
    t0 = time.perf_counter()
    try:
        result = calibration_check(volume, labels, extras)
    except Exception as exc:  # a check that cannot run must not cost the reader the endpoints
        notes.append(f"calibration check could not run: {exc}")
        return None
    times["calibration"] = time.perf_counter() - t0
    notes.extend(result.warnings)
    return result.to_dict()


def analyze(
    volume: CTVolume,
    *,
    backend: str = "auto",
    method: str = "classical",
    progress: ProgressFn = no_progress,
) -> AnalysisResult:
    """Segment ``volume`` automatically and measure it."""
    from .segmentation import get_segmenter

    segmenter = get_segmenter(method)
    t0 = time.perf_counter()
    seg = segmenter.propose(volume, backend=backend, progress=scaled(progress, 0.0, 0.9))
    times = {f"segmentation.{k}": float(v) for k, v in seg.timings.items()}
    times["segmentation"] = time.perf_counter() - t0
    progress(0.9, "measuring")
    notes = list(seg.warnings)
    calib = _calibration(volume, seg.labels, seg.extras, notes, times)
    result = measure(
        volume,
        seg.labels,
        backend=backend,
        source="auto",
        provenance=seg.provenance,
        calibration=calib,
        timings=times,
        warnings=notes,
        check_calibration=False,
    )
    progress(1.0, "done")
    return result
