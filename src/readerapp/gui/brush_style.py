"""How the brush outline looks, so the reader sees what a dab will do before painting.

Disk (this slice only): white. 3D sphere (reaches other slices): orange. HU-limited (only voxels
in the label's HU range change): dashed. Both: orange and dashed. The slice views draw the outline
as the mouse cursor itself, with :func:`qt_pen` in this style.
"""

from __future__ import annotations

from dataclasses import dataclass

from .state import COLOURS


@dataclass(frozen=True)
class BrushStyle:
    rgb: tuple[int, int, int]
    dashed: bool
    text: str  # for the status bar and the tooltip


def brush_style(settings) -> BrushStyle:  # type: ignore[no-untyped-def]
    sphere = bool(settings.sphere)
    hu = bool(settings.hu_limited)
    rgb = COLOURS["brush_sphere"] if sphere else COLOURS["brush"]
    text = ("3D sphere" if sphere else "disk") + (", HU-limited" if hu else "")
    return BrushStyle(tuple(rgb), hu, text)  # type: ignore[arg-type]


def qt_pen(style: BrushStyle, width: float = 1.0):  # type: ignore[no-untyped-def]
    """The QPen of a QPainter-drawn brush outline in this style."""
    from PySide6 import QtCore, QtGui

    pen = QtGui.QPen(QtGui.QColor(*style.rgb), width)
    if style.dashed:
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
    return pen
