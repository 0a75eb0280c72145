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
from .endpoints import NULL_REASONS_KEY, SegmentationSource, sanitize
from .errors import LabelMapError, UnmeasurableError
from .labels import LABEL_DTYPE, Label
from .progress import ProgressFn, no_progress, scaled
from .volume import CTVolume


@dataclass
class AnalysisResult:
    volume: CTVolume
    labels: np.ndarray
    endpoints: Endpoints
    backend: str
    #: AUTO (the segmentation as proposed), LOADED (a label map opened, not edited) or
    #: CORRECTED (a label map edited or given by a reader).
    segmentation_source: SegmentationSource
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    labels_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        """PROTOCOL.md's endpoint keys at the top level, then where they came from.

        Every number in it is finite: a value that is not (from any part) becomes null and its
        reason joins ``null_reasons``, so the JSON is written with ``allow_nan=False``."""
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
            segmentation_source=str(self.segmentation_source),
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
        reasons: dict[str, str] = dict(out.pop(NULL_REASONS_KEY))
        out = sanitize(out, reasons)
        out[NULL_REASONS_KEY] = reasons
        return out


#: Fewest slices a series may have: the protocol's endpoints are volumes of both whole lungs.
MIN_SLICES = 3
#: Smallest plausible lung (mL, both lungs): an adult's lungs hold litres even when consolidated
#: (the mask keeps dense lung); below this the series does not show the lungs, or not whole.
MIN_LUNG_ML = 300.0


def _series_name(volume: CTVolume) -> str:
    return f"series {volume.series_uid}" if volume.series_uid else "the series"


def check_measurable_series(volume: CTVolume) -> None:
    """Refuse, before any work, a series whose geometry cannot hold the endpoints."""
    nz = volume.shape[0]
    if nz < MIN_SLICES:
        raise UnmeasurableError(
            f"{_series_name(volume)} has {nz} slice{'s' if nz != 1 else ''}: the protocol's "
            "lung and lesion volumes need a chest CT covering both lungs from apex to base; "
            "load the full axial series")


def check_measurable_labels(volume: CTVolume, labels: np.ndarray) -> None:
    """Refuse an automatic segmentation whose lung is empty or implausibly small: the series
    does not show the lungs (or not whole), and a lesion percentage of it would be read as a
    real value. (A reader's own label map with no lung is measured: its percentages are null,
    each with the reason, and a warning says so.)"""
    lung_ml = float(np.count_nonzero(labels)) * volume.voxel_volume_ml
    if lung_ml == 0.0:
        raise UnmeasurableError(
            f"{_series_name(volume)}: no lung found, so no endpoint can be computed "
            "(is this a chest CT showing the lungs?)")
    if lung_ml < MIN_LUNG_ML:
        raise UnmeasurableError(
            f"{_series_name(volume)}: only {lung_ml:.0f} mL of lung found, implausibly small "
            f"for both lungs (at least {MIN_LUNG_ML:.0f} mL expected); the series does not show "
            "the whole lungs, so the endpoints would be wrong: load a chest CT covering both "
            "lungs")


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
    source: SegmentationSource | str = SegmentationSource.CORRECTED,
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
    if not labels.any():
        notes.append("the label map holds no lung: the percentages and mean HU are undefined "
                      "(null), not 0")
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
        segmentation_source=SegmentationSource(source),
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

    check_measurable_series(volume)
    segmenter = get_segmenter(method)
    t0 = time.perf_counter()
    seg = segmenter.propose(volume, backend=backend, progress=scaled(progress, 0.0, 0.9))
    check_measurable_labels(volume, seg.labels)
    times = {f"segmentation.{k}": float(v) for k, v in seg.timings.items()}
    times["segmentation"] = time.perf_counter() - t0
    progress(0.9, "measuring")
    notes = list(seg.warnings)
    calib = _calibration(volume, seg.labels, seg.extras, notes, times)
    result = measure(
        volume,
        seg.labels,
        backend=backend,
        source=SegmentationSource.AUTO,
        provenance=seg.provenance,
        calibration=calib,
        timings=times,
        warnings=notes,
        check_calibration=False,
    )
    progress(1.0, "done")
    return result
