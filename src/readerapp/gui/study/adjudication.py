"""The adjudicator's side-by-side view: both label maps over the same slice, both forms and
endpoint sets with the differences highlighted, then a signed choice (or a corrected read)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ... import endpoints as catalogue
from ...errors import ReaderAppError
from ..palette import overlay_rgb  # the main window's label colours: one palette
from .dialogs import SignatureDialog, table_item

#: Rows shown first, whether they differ or not: the percentages of lung (the discordance rule's
#: lesion_pct first), then the volumes, from the catalogue; then the severity total.
ADJUDICATION_FIRST = [
    *(e.key for e in catalogue.CATALOGUE if e.kind is catalogue.EndpointKind.PERCENT),
    *(e.key for e in catalogue.CATALOGUE if e.kind is catalogue.EndpointKind.VOLUME),
    "severity_total",
]


def to_pixmap(rgb: np.ndarray, size: int = 320) -> QtGui.QPixmap:
    h, w, _ = rgb.shape
    img = QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()
    return QtGui.QPixmap.fromImage(img).scaled(size, size, QtCore.Qt.AspectRatioMode.KeepAspectRatio)


class AdjudicationDialog(QtWidgets.QDialog):
    """Both reads of a discordant case; ``decided`` carries the final ReadInfo after signing."""

    decided = QtCore.Signal(object)

    def __init__(self, service, actor, code: str, parent: QtWidgets.QWidget | None = None):  # type: ignore[no-untyped-def]
        super().__init__(parent)
        from ...readfile import load_read

        self.service, self.actor, self.code = service, actor, code
        self.view = service.adjudication_view(actor, code)
        self.volume = service.case_volume(actor, code)
        self.labels: dict[str, np.ndarray] = {}
        for key, info in (("A", self.view.read_a), ("B", self.view.read_b)):
            labels = load_read(info.folder, self.volume).labels
            assert labels is not None  # loaded with a volume
            self.labels[key] = labels
        self.setWindowTitle(f"Adjudication — case {code}")
        lay = QtWidgets.QVBoxLayout(self)
        why = QtWidgets.QLabel("Discordant: " + "; ".join(self.view.reasons))
        why.setWordWrap(True)
        lay.addWidget(why)

        images = QtWidgets.QHBoxLayout()
        self.image = {}
        for key, info in (("A", self.view.read_a), ("B", self.view.read_b)):
            box = QtWidgets.QGroupBox(f"Read {key} (read {info.id}, version {info.version})")
            b = QtWidgets.QVBoxLayout(box)
            self.image[key] = QtWidgets.QLabel()
            self.image[key].setMinimumSize(240, 240)
            b.addWidget(self.image[key])
            images.addWidget(box)
        lay.addLayout(images)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, self.volume.shape[0] - 1)
        self.slider.setValue(self._most_different_slice())
        self.slider.valueChanged.connect(self._draw)
        lay.addWidget(self.slider)

        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["item", "read A", "read B"])
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table)
        self._fill_table()

        form = QtWidgets.QFormLayout()
        self.reason = QtWidgets.QPlainTextEdit()
        self.reason.setPlaceholderText("Why this read is the final read (required)")
        self.reason.setMaximumHeight(70)
        form.addRow("Reason", self.reason)
        lay.addLayout(form)
        row = QtWidgets.QHBoxLayout()
        self.choose_a = QtWidgets.QPushButton("Sign read A as final")
        self.choose_b = QtWidgets.QPushButton("Sign read B as final")
        self.choose_a.clicked.connect(lambda: self.sign(self.view.read_a.id))
        self.choose_b.clicked.connect(lambda: self.sign(self.view.read_b.id))
        row.addWidget(self.choose_a)
        row.addWidget(self.choose_b)
        lay.addLayout(row)
        self.error = QtWidgets.QLabel("")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        self._draw()

    def _most_different_slice(self) -> int:
        diff = np.not_equal(self.labels["A"], self.labels["B"]).reshape(self.volume.shape[0], -1).sum(axis=1)
        return int(np.argmax(diff))

    def _draw(self) -> None:
        z = self.slider.value()
        for key in ("A", "B"):
            rgb = overlay_rgb(self.volume.hu[z], self.labels[key][z])
            self.image[key].setPixmap(to_pixmap(rgb))

    def _fill_table(self) -> None:
        diffs = self.view.differences
        keys = ADJUDICATION_FIRST + sorted(k for k in diffs if k not in ADJUDICATION_FIRST)
        from ...study.rules import flat_items

        a = flat_items(self.view.read_a.endpoints, self.view.read_a.form)
        b = flat_items(self.view.read_b.endpoints, self.view.read_b.form)
        self.table.setRowCount(len(keys))
        for i, k in enumerate(keys):
            differ = k in diffs
            label = catalogue.flat_label(k)
            self.table.setItem(i, 0, table_item(label if label == k else f"{label} — {k}", highlight=differ))
            for j, v in enumerate((a.get(k), b.get(k)), 1):
                text = f"{v:.2f}" if isinstance(v, float) else ("—" if v is None else str(v))
                self.table.setItem(i, j, table_item(text, highlight=differ))
        self.highlighted = [k for k in keys if k in diffs]

    def sign(self, read_id: int, password: str | None = None) -> bool:
        """Sign ``read_id`` as the final read (asks for the password unless given)."""
        reason = self.reason.toPlainText().strip()
        if not reason:
            self.error.setText("Give the reason for the final read first.")
            return False
        if password is None:
            dlg = SignatureDialog(self.actor.name, self.service.config.adjudication_meaning,
                                  f"Sign read {read_id} as the final read of case {self.code}", self)
            if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted:
                return False
            password = dlg.password.text()
        try:
            info = self.service.adjudicate(self.actor, self.code, password, reason, choose=read_id)
        except ReaderAppError as exc:
            self.error.setText(str(exc))
            return False
        self.decided.emit(info)
        self.accept()
        return True
