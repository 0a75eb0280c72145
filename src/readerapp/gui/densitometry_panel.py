"""Live densitometry: every endpoint of PROTOCOL.md, start vs now, and the density histogram.

Values come from the core's incremental accumulator (a few bincounts over the changed voxels), so
the panel follows the brush. The histogram is painted with QPainter (QtCharts is not in
PySide6-Essentials, and pyqtgraph aborted at exit with PySide6 6.12; STACK.md).
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from .. import endpoints as catalogue
from ..labels import BIN_EDGES_HU
from .state import COLOURS

#: (key, title, display unit) of every scalar endpoint, from the one catalogue, in its order.
ROWS: tuple[tuple[str, str, str], ...] = tuple(
    (e.key, e.title, e.unit.display) for e in catalogue.CATALOGUE if e.scalar and e.unit is not None
)
BIN_TITLES = tuple(b.title for b in catalogue.BINS)


def _fmt(v: object) -> str:
    """Compact enough for a narrow column; the exact value is in the saved JSON."""
    if v is None:
        return "—"
    if isinstance(v, (int, float)) and abs(v) >= 1e6:
        return f"{v / 1e6:.2f} M"
    if isinstance(v, int) or (isinstance(v, float) and abs(v) >= 1e4):
        return f"{v:,.0f}".replace(",", "\u2009")
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 1000 else f"{v:.2f}"
    return str(v)


def _fmt_diff(d: float | None) -> str:
    if d is None:
        return "—"
    if d == 0:
        return "0"
    return ("+" if d > 0 else "") + _fmt(d)


class HistogramWidget(QtWidgets.QWidget):
    """Stacked histogram of lung voxels by HU (lung, GGO, consolidation), with the bin edges."""

    LO, HI, STEP = -1024, 200, 16

    def __init__(self, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parent)
        self.setMinimumHeight(120)
        self.counts: np.ndarray | None = None
        #: Heights by log10(1 + count): the few consolidation voxels stay visible beside the lung.
        self.log_scale = False
        edges = ", ".join(str(e).replace("-", "\u2212") for e in BIN_EDGES_HU)
        self.setToolTip("Lung voxels by density: plain lung (blue), GGO (yellow), "
                        f"consolidation (magenta); dashed lines at {edges} HU")

    def set_fine(self, edges: np.ndarray, counts: np.ndarray) -> None:
        lo = self.LO - int(edges[0])
        n = (self.HI - self.LO) // self.STEP
        c = counts[:, lo : lo + n * self.STEP].reshape(counts.shape[0], n, self.STEP).sum(axis=2)
        self.counts = c
        self.update()

    def set_log_scale(self, on: bool) -> None:
        self.log_scale = bool(on)
        self.update()

    def bar_fractions(self) -> np.ndarray | None:
        """Height of each stacked layer's top per bin, as a fraction of the plot (0..1)."""
        if self.counts is None:
            return None
        stacked = np.cumsum(self.counts, axis=0).astype(np.float64)
        if self.log_scale:
            stacked = np.log10(1.0 + stacked)
        return stacked / max(float(stacked[-1].max()), 1e-12 if self.log_scale else 1.0)

    def paintEvent(self, ev: QtGui.QPaintEvent) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        r = self.rect().adjusted(6, 4, -6, -18)
        p.fillRect(self.rect(), self.palette().base())
        if self.counts is None or r.width() < 10:
            p.end()
            return
        stacked = self.bar_fractions()
        assert stacked is not None
        n = stacked.shape[1]
        bw = r.width() / n
        colours = [QtGui.QColor(120, 150, 210), QtGui.QColor(*COLOURS["ggo"]),
                   QtGui.QColor(*COLOURS["consolidation"])]
        for k in range(stacked.shape[0] - 1, -1, -1):
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(colours[k])
            for i in range(n):
                h = stacked[k, i] * r.height()
                if h >= 0.5:
                    p.drawRect(QtCore.QRectF(r.left() + i * bw, r.bottom() - h, max(bw - 0.5, 1), h))
        pen = QtGui.QPen(self.palette().text().color())
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
        p.setPen(pen)
        font = p.font()
        font.setPointSizeF(max(font.pointSizeF() * 0.8, 6))
        p.setFont(font)
        for hu in BIN_EDGES_HU:
            x = r.left() + (hu - self.LO) / (self.HI - self.LO) * r.width()
            p.drawLine(QtCore.QPointF(x, r.top()), QtCore.QPointF(x, r.bottom()))
            p.drawText(QtCore.QPointF(x - 12, self.height() - 4), str(hu))
        p.drawText(QtCore.QPointF(r.left(), self.height() - 4), str(self.LO))
        p.end()


class DensitometryPanel(QtWidgets.QWidget):
    def __init__(self, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.backend_label = QtWidgets.QLabel("Backend: —")
        self.backend_label.setObjectName("backendLabel")
        self.backend_label.setToolTip("Which array library computes the live numbers")
        self.source_label = QtWidgets.QLabel("")
        head = QtWidgets.QHBoxLayout()
        head.addWidget(self.backend_label)
        head.addStretch(1)
        head.addWidget(self.source_label)
        lay.addLayout(head)
        self.table = QtWidgets.QTableWidget(len(ROWS) + len(BIN_TITLES), 3)
        self.table.setHorizontalHeaderLabels(["Auto", "Now", "Δ"])
        names = [f"{t} ({u})" for _, t, u in ROWS] + [f"{b} (%)" for b in BIN_TITLES]
        self.table.setVerticalHeaderLabels(names)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        hh.setMinimumSectionSize(self.fontMetrics().horizontalAdvance("−6.719 M"))
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setToolTip("Endpoints of PROTOCOL.md (percentages of lung volume): as "
                              "proposed automatically (or as loaded), now, and the difference")
        for r in range(self.table.rowCount()):
            for c in range(3):
                item = QtWidgets.QTableWidgetItem("—")
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        lay.addWidget(self.table, 1)
        self.hist = HistogramWidget()
        hist_head = QtWidgets.QHBoxLayout()
        hist_head.addWidget(QtWidgets.QLabel("Lung density histogram (HU)"))
        hist_head.addStretch(1)
        self.log_scale = QtWidgets.QCheckBox("Log scale")
        self.log_scale.setToolTip("Bar heights on a logarithmic scale (small GGO and "
                                  "consolidation counts stay visible)")
        self.log_scale.toggled.connect(self.hist.set_log_scale)
        hist_head.addWidget(self.log_scale)
        lay.addLayout(hist_head)
        lay.addWidget(self.hist)
        self.current: dict = {}
        self._initial: dict = {}

    def _item(self, row: int, col: int) -> QtWidgets.QTableWidgetItem:
        item = self.table.item(row, col)
        assert item is not None  # every cell is created in __init__
        return item

    def clear(self, message: str = "") -> None:
        """No numbers yet (a scan is being segmented)."""
        for r in range(self.table.rowCount()):
            for c in range(3):
                self._item(r, c).setText("—")
        self.current = {}
        self.source_label.setText(message)
        self.hist.counts = None
        self.hist.update()

    def set_initial(self, endpoints_dict: dict, title: str = "Auto") -> None:
        self.table.setHorizontalHeaderItem(0, QtWidgets.QTableWidgetItem(title))
        self._fill_column(0, endpoints_dict)
        self._initial = endpoints_dict

    def _fill_column(self, col: int, d: dict) -> None:
        for r, (key, _, _) in enumerate(ROWS):
            self._item(r, col).setText(_fmt(d.get(key)))
        for b, bin_ in enumerate(d.get("density_histogram", [])):
            self._item(len(ROWS) + b, col).setText(_fmt(bin_["pct"]))

    def update_values(self, session) -> None:  # type: ignore[no-untyped-def]
        """Refresh from the accumulator (cheap: no pass over the volume)."""
        d = session.endpoints().to_dict()
        self.current = d
        self._fill_column(1, d)
        start = self._initial
        for r, (key, _, _) in enumerate(ROWS):
            a, b = d.get(key), start.get(key)
            diff = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
            self._item(r, 2).setText(_fmt_diff(diff))
        for b, bin_ in enumerate(d["density_histogram"]):
            s = start.get("density_histogram", [{}] * len(catalogue.BINS))[b].get("pct")
            diff = bin_["pct"] - s if s is not None and bin_["pct"] is not None else None
            self._item(len(ROWS) + b, 2).setText(_fmt_diff(diff))
        backend = session.backend
        self.backend_label.setText(
            "Backend: CuPy (GPU)" if backend == "cupy" else "Backend: NumPy (CPU)"
        )
        self.source_label.setText(f"Segmentation: {session.source}")
        self.hist.set_fine(*session.acc.fine_histogram())
