"""How the brush outline looks, so the reader sees what a dab will do before painting.

Disk (this slice only): white. 3D sphere (reaches other slices): orange. HU-limited (only voxels
in the label's HU range change): dashed. Both: orange and dashed. The slice views draw the outline
with VTK (:func:`outline_polydata`); a QPainter-drawn outline (a mouse cursor) uses
:func:`qt_pen` with the same style.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .state import COLOURS, Tool


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


def shows_brush(settings) -> bool:  # type: ignore[no-untyped-def]
    """Whether the tool in use paints with the brush (otherwise no outline at all)."""
    return settings.tool is Tool.BRUSH


def outline_points(cx: float, cy: float, radius: float, sides: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def outline_polydata(cx: float, cy: float, radius: float, dashed: bool, z: float = 0.6,
                     sides: int = 48):  # type: ignore[no-untyped-def]
    """A vtkPolyData circle: one closed line, or every other segment of it when ``dashed``."""
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData

    pts2 = outline_points(cx, cy, radius, sides)
    pts = vtkPoints()
    for x, y in pts2:
        pts.InsertNextPoint(float(x), float(y), z)
    lines = vtkCellArray()
    step = 2 if dashed else 1
    for i in range(0, sides, step):
        lines.InsertNextCell(2, [i, (i + 1) % sides])
    poly = vtkPolyData()
    poly.SetPoints(pts)
    poly.SetLines(lines)
    return poly


def qt_pen(style: BrushStyle, width: float = 1.0):  # type: ignore[no-untyped-def]
    """The QPen of a QPainter-drawn brush outline in this style."""
    from PySide6 import QtCore, QtGui

    pen = QtGui.QPen(QtGui.QColor(*style.rgb), width)
    if style.dashed:
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
    return pen
