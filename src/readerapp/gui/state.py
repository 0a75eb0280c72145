"""Shared view and tool state: the linked cursor, window/level, overlay, the active tool.

One object per window; every view listens to ``changed`` so they stay linked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from PySide6 import QtCore

from ..editing import Mode

#: (window, level) presets in HU, as on common PACS consoles.
PRESETS: dict[str, tuple[float, float]] = {
    "lung": (1500.0, -600.0),
    "mediastinum": (400.0, 40.0),
    "bone": (2000.0, 400.0),
}

#: Overlay colours (RGB 0..255), chosen to stay distinct for colour-blind readers.
COLOURS = {
    "ggo": (255, 214, 10),  # yellow
    "consolidation": (230, 40, 160),  # magenta
    "lung_outline": (0, 190, 255),  # cyan
    "cursor": (80, 255, 80),
    "brush": (255, 255, 255),
    "brush_sphere": (255, 150, 40),  # orange: the brush reaches other slices
    "preview": (255, 60, 60),  # red: what a previewed edit would change
}


class Tool(Enum):
    NAVIGATE = "navigate"  # left drag: window/level; click: move the linked cursor
    BRUSH = "brush"
    FILL = "fill"  # connected region within an HU range
    REMOVE = "remove"  # remove a connected lesion with one click
    RULER = "ruler"  # drag: a distance in mm
    ROI_ELLIPSE = "roi_ellipse"  # drag a box: the ellipse in it, with HU statistics
    ROI_FREEHAND = "roi_freehand"  # drag a closed path, with HU statistics


@dataclass
class ToolSettings:
    tool: Tool = Tool.NAVIGATE
    mode: Mode = Mode.GGO
    radius_mm: float = 5.0
    sphere: bool = False  # 3D sphere instead of a 2D disk
    hu_limited: bool = False  # brush limited to the label's HU range
    keep_inside_lung: bool = True
    fill_3d: bool = False
    fill_range: tuple[float, float] | None = None  # None: the painted label's own HU range
    fill_radius_mm: float = 30.0  # a 3D fill reaches at most this far from the click
    remove_3d: bool = False  # remove the whole 3D lesion (previewed) instead of the slice's piece
    confirm_ml: float = 20.0  # a previewed edit larger than this asks before it is applied


class ViewState(QtCore.QObject):
    """Cursor, window/level and overlay settings shared by all views."""

    cursor_changed = QtCore.Signal()
    display_changed = QtCore.Signal()

    def __init__(self) -> None:
        super().__init__()
        self.shape = (1, 1, 1)
        self.cursor = [0, 0, 0]  # (z, y, x)
        self.window, self.level = PRESETS["lung"]
        self.overlay_visible = True
        self.overlay_opacity = 0.45
        self.outline_visible = True
        self.crosshair_visible = True
        self.slab_mode = "off"  # "off", "mip" (maximum) or "minip" (minimum intensity projection)
        self.slab_mm = 10.0  # thickness of the slab, centred on the cursor's slice

    def reset(self, shape: tuple[int, int, int]) -> None:
        self.shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
        self.cursor = [s // 2 for s in self.shape]
        self.cursor_changed.emit()

    def set_cursor(self, zyx) -> None:  # type: ignore[no-untyped-def]
        c = [min(max(int(round(v)), 0), n - 1) for v, n in zip(zyx, self.shape, strict=False)]
        if c != self.cursor:
            self.cursor = c
            self.cursor_changed.emit()

    def step_slice(self, axis: int, delta: int) -> None:
        c = list(self.cursor)
        c[axis] += delta
        self.set_cursor(c)

    def set_window(self, window: float, level: float) -> None:
        self.window, self.level = max(float(window), 1.0), float(level)
        self.display_changed.emit()

    def preset(self, name: str) -> None:
        self.set_window(*PRESETS[name])

    def set_display(self, *, crosshair: bool | None = None, slab_mode: str | None = None,
                    slab_mm: float | None = None) -> None:
        if crosshair is not None:
            self.crosshair_visible = crosshair
        if slab_mode is not None:
            if slab_mode not in ("off", "mip", "minip"):
                raise ValueError(f"unknown slab mode {slab_mode!r}")
            self.slab_mode = slab_mode
        if slab_mm is not None:
            self.slab_mm = max(float(slab_mm), 0.0)
        self.display_changed.emit()

    def set_overlay(self, visible: bool | None = None, opacity: float | None = None,
                    outline: bool | None = None) -> None:
        if visible is not None:
            self.overlay_visible = visible
        if opacity is not None:
            self.overlay_opacity = min(max(opacity, 0.0), 1.0)
        if outline is not None:
            self.outline_visible = outline
        self.display_changed.emit()
