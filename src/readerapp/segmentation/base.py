"""The one interface every automatic segmentation method implements, and a small registry.

The classical method and any later deep-learning model both turn a :class:`CTVolume` into a
:class:`SegmentationResult`; the command line, the GUI and the benchmark only ever see this
interface, so a new method is added by registering it, not by editing callers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ReaderAppError
from ..progress import ProgressFn, no_progress
from ..volume import CTVolume


@dataclass
class SegmentationResult:
    """A proposed label map with what is needed to trust and reproduce it.

    ``labels`` is always a host NumPy uint8 (z, y, x) array with the values of
    :class:`readerapp.labels.Label`; ``extras`` holds named boolean host masks that later stages
    use (at least ``"trachea"``: the removed trachea / main-bronchi lumen, and ``"body"``).
    """

    labels: np.ndarray
    provenance: dict[str, Any]
    #: Stage name -> seconds, in the order the stages ran.
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return float(sum(self.timings.values()))


@runtime_checkable
class Segmenter(Protocol):
    """A method that proposes lung, ground-glass and consolidation labels for one CT volume."""

    name: str
    version: str

    def propose(
        self, volume: CTVolume, *, backend: str = "auto", progress: ProgressFn = no_progress
    ) -> SegmentationResult: ...


class StageTimer:
    """Records wall time per named stage, in order, and reports progress between stages.

    On CuPy the caller passes a ``sync`` that waits for the device, so a stage's time is its own
    and not the next stage's.
    """

    def __init__(
        self, progress: ProgressFn = no_progress, sync: Callable[[], None] | None = None
    ) -> None:
        self.timings: dict[str, float] = {}
        self._progress = progress
        self._sync = sync

    @contextmanager
    def stage(self, name: str, fraction: float) -> Iterator[None]:
        self._progress(fraction, name)
        t0 = time.perf_counter()
        yield
        if self._sync is not None:
            self._sync()
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0


_REGISTRY: dict[str, Callable[[], Segmenter]] = {}


def register_segmenter(name: str, factory: Callable[[], Segmenter]) -> None:
    """Make a method available under ``name`` (for example a deep-learning model's plug-in)."""
    _REGISTRY[name] = factory


def available_segmenters() -> list[str]:
    """Names accepted by :func:`get_segmenter`."""
    return sorted(_REGISTRY)


def get_segmenter(name: str = "classical") -> Segmenter:
    """The segmentation method registered under ``name``."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ReaderAppError(
            f"unknown segmentation method {name!r}: choose one of {', '.join(available_segmenters())}"
        ) from None
    return factory()
