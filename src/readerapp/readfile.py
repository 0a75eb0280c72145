"""A saved read: one folder with the corrected label map, the forms, the endpoints and provenance.

Layout (every file written atomically: temporary file, fsync, rename, then fsync of the folder)::

    READ/labels.nii.gz    label map on the series grid (0 outside, 1 lung, 2 GGO, 3 consolidation)
    READ/form.json        ReadForm.to_dict()
    READ/endpoints.json   the AnalysisResult JSON of PROTOCOL.md (what ``readerapp measure`` writes)
    READ/measurements.json  the reader's rulers and ROIs (readerapp.measurements), when any
    READ/read.json        software version, series UID, segmentation source, SHA-256 of the label
                          file, timestamps; written last, so its presence marks a complete read

``readerapp measure --labels READ/labels.nii.gz`` and the study workflow consume the folder; the
checksum lets them refuse a label file that was swapped or damaged after saving.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .endpoints import SegmentationSource
from .errors import ReaderAppError
from .fileio import atomic_write_json, sha256_file
from .forms import FormError, ReadForm
from .volume import CTVolume

LABELS_NAME = "labels.nii.gz"
FORM_NAME = "form.json"
ENDPOINTS_NAME = "endpoints.json"
META_NAME = "read.json"
FORMAT_VERSION = 1
#: Where a read's labels came from: the automatic proposal unedited, a loaded label map unedited,
#: or edited by the reader.
SOURCES = tuple(str(s) for s in SegmentationSource)


class ReadFileError(ReaderAppError):
    """A read folder is incomplete, damaged or belongs to another series."""


@dataclass
class Read:
    """A read as loaded from its folder (``labels`` only when a volume was given)."""

    folder: Path
    form: ReadForm
    endpoints: dict[str, Any]
    meta: dict[str, Any]
    labels: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Rulers and ROIs kept with the read (:class:`readerapp.measurements.Measurement`).
    measurements: list[Any] = field(default_factory=list)


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _read_labels(path: Path, volume: CTVolume) -> np.ndarray:
    try:
        from .io.labelmap import read_labelmap
    except ImportError:
        read_labelmap = None  # type: ignore[assignment]
    if read_labelmap is not None:
        return read_labelmap(path, volume)
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    if arr.shape != volume.shape:
        raise ReadFileError(f"{path}: label map shape {arr.shape} does not match the CT {volume.shape}")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _endpoints_dict(endpoints: Any) -> dict[str, Any]:
    if endpoints is None:
        return {}
    if hasattr(endpoints, "to_json"):
        endpoints = endpoints.to_json()
    if isinstance(endpoints, str):
        endpoints = json.loads(endpoints)
    if hasattr(endpoints, "to_dict"):
        endpoints = endpoints.to_dict()
    if not isinstance(endpoints, dict):
        raise TypeError(f"endpoints must be a dict or AnalysisResult, got {type(endpoints).__name__}")
    return endpoints


def save_read(
    folder: str | Path,
    *,
    volume: CTVolume,
    labels: np.ndarray,
    form: ReadForm,
    endpoints: Any,
    source: SegmentationSource | str = SegmentationSource.CORRECTED,
    started_utc: str | None = None,
    extra: dict[str, Any] | None = None,
    measurements: list[Any] | None = None,
) -> Path:
    """Save a read into ``folder`` (created if needed) and return the folder.

    ``endpoints`` is an AnalysisResult (or its JSON dict); ``source`` says whether the label map is
    the automatic proposal or the reader's correction. Re-saving overwrites file by file, each
    atomically; read.json goes last, so a crash mid-save leaves the previous read.json, whose
    checksum then no longer matches and :func:`load_read` says so.
    """
    if source not in SOURCES:
        raise ReadFileError(f"segmentation source must be one of {SOURCES}, got {source!r}")
    if labels.shape != volume.shape:
        raise ReadFileError(f"label map shape {labels.shape} does not match the CT {volume.shape}")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReadFileError(f"cannot create the read folder {folder}: {exc.strerror}") from exc
    previous = {}
    if (folder / META_NAME).is_file():
        try:
            previous = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
    now = _utc_now()
    labels_path = folder / LABELS_NAME
    from .io.labelmap import write_labelmap

    write_labelmap(labels_path, labels, volume)  # written atomically
    _write_json(folder / FORM_NAME, form.to_dict())
    _write_json(folder / ENDPOINTS_NAME, _endpoints_dict(endpoints))
    from .measurements import FILE_NAME as MEASUREMENTS_NAME
    from .measurements import to_json_obj

    if measurements:
        _write_json(folder / MEASUREMENTS_NAME, to_json_obj(measurements))
    else:  # a re-save without measurements must not leave the previous ones behind
        (folder / MEASUREMENTS_NAME).unlink(missing_ok=True)
    meta = {
        "format": "readerapp-read",
        "format_version": FORMAT_VERSION,
        "software": "readerapp",
        "software_version": __version__,
        "series_uid": volume.series_uid,
        "study_uid": volume.study_uid,
        "shape_zyx": list(volume.shape),
        "spacing_xyz_mm": list(volume.spacing),
        "segmentation_source": str(source),
        "labels_file": LABELS_NAME,
        "labels_sha256": sha256_file(labels_path),
        "created_utc": previous.get("created_utc") or started_utc or now,
        "saved_utc": now,
        "volume_warnings": list(volume.warnings),
    }
    if extra:
        meta["extra"] = extra
    _write_json(folder / META_NAME, meta)
    return folder


def _write_json(path: Path, obj: Any) -> None:
    try:
        atomic_write_json(path, obj)
    except OSError as exc:  # no permission, disk full, a folder in the way
        raise ReadFileError(f"cannot save {path}: {exc.strerror or exc}") from exc


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReadFileError(f"{path} is missing: this folder is not a complete ReaderApp read") from exc
    except (OSError, ValueError) as exc:
        raise ReadFileError(f"{path} cannot be read as JSON: {exc}") from exc


def load_read(folder: str | Path, volume: CTVolume | None = None) -> Read:
    """Load and check a read folder; with ``volume``, also its label map (same series required)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReadFileError(f"{folder} is not a folder: a read is saved as a folder")
    meta = _load_json(folder / META_NAME)
    if not isinstance(meta, dict) or meta.get("format") != "readerapp-read":
        raise ReadFileError(f"{folder / META_NAME} is not a ReaderApp read description")
    labels_path = folder / meta.get("labels_file", LABELS_NAME)
    if not labels_path.is_file():
        raise ReadFileError(f"{labels_path} is missing")
    digest = sha256_file(labels_path)
    if digest != meta.get("labels_sha256"):
        raise ReadFileError(
            f"{labels_path} does not match the checksum in {META_NAME}: the label map was changed "
            "or damaged after the read was saved"
        )
    try:
        form = ReadForm.from_dict(_load_json(folder / FORM_NAME))
    except FormError as exc:
        raise ReadFileError(f"{folder / FORM_NAME}: {exc}") from exc
    endpoints = _load_json(folder / ENDPOINTS_NAME)
    from .measurements import FILE_NAME as MEASUREMENTS_NAME
    from .measurements import MeasurementError, from_json_obj

    measurements: list[Any] = []
    if (folder / MEASUREMENTS_NAME).is_file():  # reads saved before measurements have none
        try:
            measurements = from_json_obj(_load_json(folder / MEASUREMENTS_NAME))
        except MeasurementError as exc:
            raise ReadFileError(f"{folder / MEASUREMENTS_NAME}: {exc}") from exc
    labels = None
    if volume is not None:
        uid = meta.get("series_uid")
        if uid and volume.series_uid and uid != volume.series_uid:
            raise ReadFileError(f"{folder} is a read of another series (UID {uid})")
        labels = _read_labels(labels_path, volume)
    return Read(folder=folder, form=form, endpoints=endpoints, meta=meta, labels=labels,
                measurements=measurements)
