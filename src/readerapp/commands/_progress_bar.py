"""A terminal progress bar on stderr for long command-line work (silent when not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(
        self, label: str, stream: TextIO | None = None, width: int = 30, quiet: bool = False
    ) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self.t0 = time.perf_counter()

    def __call__(self, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and fraction < 1.0:
            return
        self._last = now
        n = int(self.width * min(max(fraction, 0.0), 1.0))
        bar = "#" * n + "-" * (self.width - n)
        self.stream.write(f"\r{self.label} [{bar}] {fraction * 100:5.1f}% {message[:40]:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write(f"\r{self.label}: done in {time.perf_counter() - self.t0:.1f} s" + " " * 60 + "\n")
            self.stream.flush()
