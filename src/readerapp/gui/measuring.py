"""Measuring in the slice views: distance ruler, ellipse ROI and freehand ROI.

The geometry and the numbers are in :mod:`readerapp.measurements`; this adapter turns a drag in a
view into a measurement kept in the reading session (saved with the read), draws the
measurements of the slice shown, and lists them in the "Measurements" tab.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6 import QtCore, QtWidgets

from .. import measurements as meas
from .state import Tool

MEASURE_TOOLS = {Tool.RULER: "ruler", Tool.ROI_ELLIPSE: "ellipse", Tool.ROI_FREEHAND: "freehand"}
TITLES = {"ruler": "Ruler", "ellipse": "Ellipse ROI", "freehand": "Freehand ROI"}
COLOUR = (120, 255, 120)  # measurements
DRAWING_COLOUR = (255, 255, 255)  # the one being drawn


class MeasureController(QtCore.QObject):
    """Measurements of the current session; the slice views feed it drags and draw its masks."""

    changed = QtCore.Signal()  # a measurement was added, removed, or the drawing moved
    message = QtCore.Signal(str)

    def __init__(self, controller) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.controller = controller
        self._drawing: tuple[str, int, list[tuple[float, float, float]]] | None = None

    @property
    def items(self) -> list[meas.Measurement]:
        s = self.controller.session
        return s.measurements if s is not None else []

    # --- drawing with the mouse -------------------------------------------------------------
    def press(self, axis: int, zyx) -> None:  # type: ignore[no-untyped-def]
        kind = MEASURE_TOOLS.get(self.controller.settings.tool)
        if kind is None or self.controller.session is None:
            return
        self._drawing = (kind, axis, [tuple(float(v) for v in zyx)])  # type: ignore[list-item]

    def move(self, zyx) -> None:  # type: ignore[no-untyped-def]
        if self._drawing is None:
            return
        kind, axis, pts = self._drawing
        p = tuple(float(v) for v in zyx)
        if kind == "freehand":
            pts.append(p)  # type: ignore[arg-type]
        else:
            del pts[1:]
            pts.append(p)  # type: ignore[arg-type]
        self.changed.emit()

    def release(self, zyx) -> meas.Measurement | None:  # type: ignore[no-untyped-def]
        if self._drawing is None:
            return None
        self.move(zyx)
        kind, axis, pts = self._drawing
        self._drawing = None
        s = self.controller.session
        try:
            if s is None:
                return None
            if kind == "freehand" and len({tuple(round(v) for v in p) for p in pts}) < 3:
                raise meas.MeasurementError("drag around the region to draw it")
            m = meas.make(kind, axis, pts, s.volume.hu, s.volume.spacing_zyx)
        except meas.MeasurementError as exc:
            self.message.emit(f"{TITLES[kind]}: {exc}")
            self.changed.emit()
            return None
        s.measurements.append(m)
        self.message.emit(f"{TITLES[kind]} {len(s.measurements)}: {m.summary()}")
        self.changed.emit()
        return m

    def delete_last(self) -> None:
        if self.items:
            m = self.items.pop()
            self.message.emit(f"{TITLES[m.kind]} deleted")
            self.changed.emit()

    def delete(self, i: int) -> None:
        if 0 <= i < len(self.items):
            self.items.pop(i)
            self.changed.emit()

    # --- what the views draw ----------------------------------------------------------------
    def overlays(self, axis: int, index: int) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
        s = self.controller.session
        if s is None:
            return []
        shape = s.labels.shape
        out = []
        for m in self.items:
            if m.axis == axis and m.index == index:
                out.append((meas.line_mask(m, shape), COLOUR))
        if self._drawing is not None:
            kind, ax, pts = self._drawing
            if ax == axis and len(pts) >= 2 and int(round(pts[0][axis])) == index:
                if kind == "ellipse":
                    pts = meas.ellipse_polygon(pts[0], pts[-1], axis)  # type: ignore[assignment]
                tmp = meas.Measurement("ruler" if kind == "ruler" else "freehand", axis, index, pts)  # type: ignore[arg-type]
                out.append((meas.line_mask(tmp, shape), DRAWING_COLOUR))
        return out


class MeasurementsPanel(QtWidgets.QWidget):
    """The list of measurements with their values; a double-click goes to one's slice."""

    def __init__(self, measure: MeasureController, state: Any, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parent)
        self.measure = measure
        self.state = state
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(QtWidgets.QLabel(
            "Ruler (T), ellipse ROI (E), freehand ROI (Shift+E): drag on a slice. "
            "Saved with the read."))
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("measurementsList")
        self.list.itemDoubleClicked.connect(self._go)
        lay.addWidget(self.list, 1)
        self.delete_button = QtWidgets.QPushButton("Delete selected")
        self.delete_button.clicked.connect(self._delete_selected)
        lay.addWidget(self.delete_button)
        measure.changed.connect(self.sync)

    def sync(self) -> None:
        rows = [f"{i + 1}. {TITLES[m.kind]} (slice {m.index + 1}, "
                f"{('axial', 'coronal', 'sagittal')[m.axis]}): {m.summary()}"
                for i, m in enumerate(self.measure.items)]
        if rows != [self.list.item(i).text() for i in range(self.list.count())]:
            self.list.clear()
            self.list.addItems(rows)

    def _go(self, item: QtWidgets.QListWidgetItem) -> None:
        m = self.measure.items[self.list.row(item)]
        self.state.set_cursor(m.points[0])

    def _delete_selected(self) -> None:
        self.measure.delete(self.list.currentRow())
