"""Automatic lung, ground-glass and consolidation segmentation behind one interface.

``get_segmenter("classical").propose(volume)`` returns a :class:`SegmentationResult`; a
deep-learning model can be registered beside the classical method with
:func:`register_segmenter`. Importing this package needs only NumPy and SciPy (CuPy when the
``cupy`` backend is used).
"""

from __future__ import annotations

from .base import (
    SegmentationResult,
    Segmenter,
    StageTimer,
    available_segmenters,
    get_segmenter,
    register_segmenter,
)
from .classical import ClassicalParameters, ClassicalSegmenter

register_segmenter("classical", ClassicalSegmenter)

__all__ = [
    "ClassicalParameters",
    "ClassicalSegmenter",
    "SegmentationResult",
    "Segmenter",
    "StageTimer",
    "available_segmenters",
    "get_segmenter",
    "register_segmenter",
]
