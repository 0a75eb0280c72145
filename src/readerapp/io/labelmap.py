"""Label maps on disk (NIfTI, NRRD, anything SimpleITK writes) checked against their CT.

A label map is only meaningful on its series' grid: a wrong size is refused, a wrong spacing is
refused, and a small origin or direction difference is accepted with a warning, since tools
round geometry differently when they convert LPS to NIfTI's RAS.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import LabelMapError
from ..fileio import atomic_write
from ..labels import LABEL_DTYPE, Label
from ..volume import CTVolume

SUPPORTED_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
MAX_LABEL = max(Label)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_labelmap(
    path: str | os.PathLike[str], volume: CTVolume, warnings: list[str] | None = None
) -> np.ndarray:
    """The label map at ``path`` as a uint8 (z, y, x) array on ``volume``'s grid."""
    import SimpleITK as sitk

    p = Path(path)
    if _suffix(p) not in SUPPORTED_SUFFIXES:
        raise LabelMapError(
            f"{p}: unsupported label-map format; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not p.exists():
        raise LabelMapError(f"{p}: label map not found")
    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        raise LabelMapError(f"{p}: cannot read the label map ({_reason(exc, 'unreadable')})") from None
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise LabelMapError(f"{p}: label map has several components per voxel; expected one")
    arr = sitk.GetArrayFromImage(img)
    if arr.ndim != 3 or tuple(arr.shape) != volume.shape:
        raise LabelMapError(
            f"{p}: label map grid {tuple(reversed(arr.shape))} (x, y, z) does not match the "
            f"series grid {tuple(reversed(volume.shape))}; export it on the series' grid"
        )
    spacing = np.asarray(img.GetSpacing())
    if not np.allclose(spacing, volume.spacing, rtol=1e-2, atol=1e-3):
        raise LabelMapError(
            f"{p}: label map spacing {tuple(np.round(spacing, 4))} mm differs from the series' "
            f"{tuple(np.round(volume.spacing, 4))} mm"
        )
    notes = warnings if warnings is not None else []
    origin_off = float(np.max(np.abs(np.asarray(img.GetOrigin()) - volume.origin)))
    dir_off = float(np.max(np.abs(np.asarray(img.GetDirection()) - volume.direction)))
    if origin_off > 0.5 * min(volume.spacing) or dir_off > 1e-3:
        notes.append(
            f"{p.name}: label map origin/direction differ from the series' "
            f"(origin by {origin_off:.2f} mm, direction by {dir_off:.4f}); voxel grid used as is"
        )
    if np.issubdtype(arr.dtype, np.floating) and (
        not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr))
    ):
        raise LabelMapError(f"{p}: label map holds non-integer values; expected labels 0..3")
    lo, hi = (arr.min(), arr.max()) if arr.size else (0, 0)
    if lo < 0 or hi > MAX_LABEL:
        bad = np.unique(arr[(arr < 0) | (arr > MAX_LABEL)])[:10]
        raise LabelMapError(
            f"{p}: label map holds values {bad.tolist()} outside 0..{int(MAX_LABEL)} "
            "(0 outside, 1 lung, 2 ground glass, 3 consolidation)"
        )
    return np.ascontiguousarray(arr.astype(LABEL_DTYPE, copy=False))


def write_labelmap(path: str | os.PathLike[str], labels: np.ndarray, volume: CTVolume) -> Path:
    """Write ``labels`` on ``volume``'s grid; written to a temporary name, then renamed."""
    import SimpleITK as sitk

    p = Path(path)
    if _suffix(p) not in SUPPORTED_SUFFIXES:
        raise LabelMapError(
            f"{p}: unsupported label-map format; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if labels.shape != volume.shape:
        raise LabelMapError(f"{p}: label map shape {labels.shape} does not match CT {volume.shape}")
    img = sitk.GetImageFromArray(np.ascontiguousarray(labels, dtype=LABEL_DTYPE))
    img.SetSpacing(volume.spacing)
    img.SetOrigin(volume.origin)
    img.SetDirection(volume.direction)
    try:
        return atomic_write(p, lambda tmp: sitk.WriteImage(img, str(tmp), useCompression=True),
                            suffix=_suffix(p))
    except (OSError, RuntimeError) as exc:  # no such folder, no permission, disk full
        raise LabelMapError(f"{p}: cannot write the label map ({_reason(exc, 'write failed')})") from exc


def _reason(exc: BaseException, default: str) -> str:
    """The useful last line of an OSError or a SimpleITK RuntimeError (whose text is long)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[-1] if text else default
