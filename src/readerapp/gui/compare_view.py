"""Baseline and follow-up side by side, scrolling linked by patient position.

Two axial panes (the scan being read on the left, the other visit on the right), drawn in the
main window's label colours. Scrolling either pane (wheel, slider, arrow keys) moves the other to
the slice at the same patient position (:class:`readerapp.compare.SliceLink`). When the table
position differed between visits, untick *Link*, scroll one side to the matching anatomy, and
tick it again: the offset is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ..compare import SliceLink
from ..volume import CTVolume
from .palette import overlay_rgb
from .slice_view import axis_flips


class _Pane(QtWidgets.QWidget):
    scrolled = QtCore.Signal(int)  # the slice index chosen by the reader in this pane

    def __init__(self, title: str, volume: CTVolume, labels: Any) -> None:
        super().__init__()
        self.volume = volume
        self.labels = labels  # an array or a callable returning the live array
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.title = QtWidgets.QLabel(title)
        self.title.setObjectName("viewHeader")
        lay.addWidget(self.title)
        self.image = QtWidgets.QLabel()
        self.image.setMinimumSize(240, 240)
        self.image.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.image.installEventFilter(self)
        lay.addWidget(self.image, 1)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, volume.shape[0] - 1)
        self.slider.valueChanged.connect(self._on_slider)
        lay.addWidget(self.slider)
        self.position = QtWidgets.QLabel("")
        lay.addWidget(self.position)
        self._quiet = False

    def current_labels(self) -> np.ndarray:
        return self.labels() if callable(self.labels) else self.labels

    @property
    def index(self) -> int:
        return int(self.slider.value())

    def set_index(self, i: int) -> None:
        """Show slice ``i`` without signalling a scroll (the other pane drives it)."""
        self._quiet = True
        try:
            self.slider.setValue(int(i))
        finally:
            self._quiet = False
        self.draw()

    def _on_slider(self, v: int) -> None:
        self.draw()
        if not self._quiet:
            self.scrolled.emit(int(v))

    def draw(self) -> None:
        """The slice in the radiological convention (patient's right on the left, anterior up),
        mirrored as the slice views are when the scan's axes run against LPS."""
        z = self.index
        fx, fy, _ = axis_flips(tuple(self.volume.direction))
        sl = (slice(None, None, -1 if fy else 1), slice(None, None, -1 if fx else 1))
        rgb = np.ascontiguousarray(overlay_rgb(self.volume.hu[z][sl], self.current_labels()[z][sl]))
        h, w, _ = rgb.shape
        img = QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()
        size = self.image.size()
        self.image.setPixmap(QtGui.QPixmap.fromImage(img).scaled(
            max(size.width(), 64), max(size.height(), 64), QtCore.Qt.AspectRatioMode.KeepAspectRatio))
        self.shown = rgb

    def set_position_text(self, text: str) -> None:
        self.position.setText(text)

    def eventFilter(self, obj, ev) -> bool:  # type: ignore[no-untyped-def]  # noqa: N802
        if obj is self.image and ev.type() == QtCore.QEvent.Type.Wheel:
            steps = ev.angleDelta().y() / 120.0
            if steps:
                n = 5 if ev.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier else 1
                self.slider.setValue(self.index + int(np.sign(steps)) * n)
            return True
        return False


class CompareWindow(QtWidgets.QWidget):
    """Two scans of one patient side by side, scrolling linked by patient position."""

    def __init__(self, left: tuple[str, CTVolume, Any], right: tuple[str, CTVolume, Any],
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent, QtCore.Qt.WindowType.Window)
        self.setWindowTitle("ReaderApp — compare scans")
        self.link = SliceLink(left[1], right[1])
        lay = QtWidgets.QVBoxLayout(self)
        panes = QtWidgets.QHBoxLayout()
        self.left, self.right = _Pane(*left), _Pane(*right)
        panes.addWidget(self.left, 1)
        panes.addWidget(self.right, 1)
        lay.addLayout(panes, 1)
        row = QtWidgets.QHBoxLayout()
        self.linked = QtWidgets.QCheckBox("Link scrolling by patient position")
        self.linked.setChecked(True)
        self.linked.setToolTip("Untick, scroll one side to the same anatomy, tick again: the "
                               "table-position offset between the visits is kept")
        self.linked.toggled.connect(self._on_link_toggled)
        row.addWidget(self.linked)
        self.offset_label = QtWidgets.QLabel("")
        row.addWidget(self.offset_label, 1)
        lay.addLayout(row)
        self.left.scrolled.connect(self._left_scrolled)
        self.right.scrolled.connect(self._right_scrolled)
        self.resize(1000, 620)
        self.left.set_index(self.left.volume.shape[0] // 2)
        self._left_scrolled(self.left.index)

    def _texts(self) -> None:
        for pane, pos in ((self.left, self.link.pos_a), (self.right, self.link.pos_b)):
            pane.set_position_text(f"slice {pane.index + 1}/{pane.volume.shape[0]}, "
                                   f"position {pos[pane.index]:+.1f} mm")
        self.offset_label.setText(f"offset {self.link.offset_mm:+.1f} mm")

    def _left_scrolled(self, i: int) -> None:
        if self.linked.isChecked():
            j = self.link.b_for_a(i)
            if j is not None:
                self.right.set_index(j)
            self.right.title.setStyleSheet("" if j is not None else "color: #c08040")
        self._texts()

    def _right_scrolled(self, j: int) -> None:
        if self.linked.isChecked():
            i = self.link.a_for_b(j)
            if i is not None:
                self.left.set_index(i)
        self._texts()

    def _on_link_toggled(self, on: bool) -> None:
        if on:  # what is shown now is the same anatomy: keep that offset
            self.link.relink(self.left.index, self.right.index)
        self._texts()

    def follow(self, index_left: int) -> None:
        """The main window's axial slice changed: follow it on the left (and link the right)."""
        if index_left != self.left.index:
            self.left.set_index(index_left)
            self._left_scrolled(index_left)

    def redraw(self) -> None:
        self.left.draw()
        self.right.draw()
