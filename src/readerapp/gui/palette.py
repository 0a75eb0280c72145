"""One palette for every picture of a label map: the main window's colours (``state.COLOURS``).

The slice views, the adjudication dialog and the comparison window all blend GGO and
consolidation and outline the lung with these colours, so a lesion looks the same everywhere.
"""

from __future__ import annotations

import numpy as np

from .state import COLOURS

#: Label value -> the COLOURS key it is drawn with (lung as an outline only).
LABEL_COLOUR_KEYS = {2: "ggo", 3: "consolidation"}


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def grey(hu2d: np.ndarray, window: float = 1500.0, level: float = -600.0) -> np.ndarray:
    """Grey RGB (rows, cols, 3) uint8 of a slice at a window and level (lung window by default)."""
    g = np.clip((hu2d.astype(np.float32) - (level - window / 2)) / window * 255.0, 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def blend_labels(rgb: np.ndarray, lab2d: np.ndarray, opacity: float = 0.45,
                 lung_outline: bool = True) -> np.ndarray:
    """Blend the lesion colours into ``rgb`` (in place, returned) and outline the lung."""
    for value, key in LABEL_COLOUR_KEYS.items():
        m = lab2d == value
        if m.any():
            col = np.asarray(COLOURS[key], np.float32)
            rgb[m] = (rgb[m] * (1 - opacity) + col * opacity).astype(np.uint8)
    if lung_outline:
        rgb[_outline(lab2d > 0)] = COLOURS["lung_outline"]
    return rgb


def overlay_rgb(hu2d: np.ndarray, lab2d: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """Lung-window grey with the labels in the main window's colours, as (rows, cols, 3) uint8."""
    return np.ascontiguousarray(blend_labels(grey(hu2d), lab2d, opacity))
