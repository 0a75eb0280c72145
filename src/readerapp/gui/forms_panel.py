"""The reader's forms: per-lobe severity (every scan) and the fibrosis grid (Day-90 scans).

Each fibrosis feature shows its definition (``readerapp.forms``) beside its row. Unanswered is a
state of its own ("—"), so a read cannot be completed by forgetting a box: ``missing`` lists
what is left and the save action refuses until it is empty.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from ..forms import FIBROSIS_FEATURES, LOBE_NAMES, LOBES, SEVERITY_SCALE, ReadForm

UNANSWERED = "—"
#: (row, column) of each lobe in the severity grid: right lung on the left, left lung on the right,
#: upper to lower; the left lung has no middle lobe (the lingula belongs to LUL).
SEVERITY_GRID = {"RUL": (0, 0), "LUL": (0, 1), "RML": (1, 0), "RLL": (2, 0), "LLL": (2, 1)}


def _combo(min_chars: int) -> QtWidgets.QComboBox:
    """A combo box that may be narrower than its longest item (the form must fit a side panel)."""
    cb = QtWidgets.QComboBox()
    cb.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    cb.setMinimumContentsLength(min_chars)
    cb.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
    return cb


class FormsPanel(QtWidgets.QScrollArea):
    changed = QtCore.Signal()

    def __init__(self, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QtWidgets.QWidget()
        self.setWidget(inner)
        lay = QtWidgets.QVBoxLayout(inner)
        lay.setContentsMargins(4, 4, 4, 4)

        sev_box = QtWidgets.QGroupBox("CT severity score (extent per lobe, 0-5)")
        sev = QtWidgets.QGridLayout(sev_box)
        self.severity: dict[str, QtWidgets.QComboBox] = {}
        for lobe in LOBES:
            # Right lung beside left, as the lobes lie: RUL | LUL, RML | -, RLL | LLL.
            r, col = SEVERITY_GRID[lobe]
            lab = QtWidgets.QLabel(lobe)
            lab.setToolTip(LOBE_NAMES[lobe])
            cb = _combo(6)
            cb.addItem(UNANSWERED, None)
            for score, text in SEVERITY_SCALE.items():
                cb.addItem(f"{score}  ({text})", score)
            cb.setToolTip(f"Extent of involvement of the {LOBE_NAMES[lobe]}, 0 to 5")
            cb.currentIndexChanged.connect(self._changed)
            sev.addWidget(lab, r, col * 2)
            sev.addWidget(cb, r, col * 2 + 1)
            self.severity[lobe] = cb
        self.total_label = QtWidgets.QLabel("Total: — / 25")
        self.total_label.setObjectName("severityTotal")
        sev.addWidget(self.total_label, 3, 0, 1, 4)
        sev.setColumnStretch(1, 1)
        sev.setColumnStretch(3, 1)
        lay.addWidget(sev_box)

        self.day90 = QtWidgets.QCheckBox("Day-90 scan: score the fibrosis features")
        self.day90.setToolTip("The fibrosis form is required for Day-90 scans (PROTOCOL.md)")
        self.day90.toggled.connect(self._day90_toggled)
        lay.addWidget(self.day90)

        self.fib_box = QtWidgets.QGroupBox("Fibrosis features: present in the lobe?")
        fib = QtWidgets.QGridLayout(self.fib_box)
        fib.setHorizontalSpacing(4)
        self.fib_headers: list[QtWidgets.QLabel] = []
        for j, lobe in enumerate(LOBES):
            h = QtWidgets.QLabel(f"<b>{lobe}</b>")
            h.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            h.setToolTip(LOBE_NAMES[lobe])
            fib.addWidget(h, 0, j)
            self.fib_headers.append(h)
        self.fibrosis: dict[str, dict[str, QtWidgets.QComboBox]] = {}
        row = 1
        for f in FIBROSIS_FEATURES:
            title = QtWidgets.QLabel(f"<b>{f.title}</b>")
            title.setWordWrap(True)
            fib.addWidget(title, row, 0, 1, len(LOBES))
            definition = QtWidgets.QLabel(f.definition + f"  <i>({f.source})</i>")
            definition.setWordWrap(True)
            definition.setObjectName("definition")
            fib.addWidget(definition, row + 1, 0, 1, len(LOBES))
            self.fibrosis[f.key] = {}
            for j, lobe in enumerate(LOBES):
                cb = _combo(1)
                cb.addItem(UNANSWERED, None)
                cb.addItem("No", False)
                cb.addItem("Yes", True)
                cb.setToolTip(f"{f.title}: {LOBE_NAMES[lobe]}")
                cb.currentIndexChanged.connect(self._changed)
                fib.addWidget(cb, row + 2, j)
                self.fibrosis[f.key][lobe] = cb
            row += 3
        self.all_no = QtWidgets.QPushButton("Unanswered → No")
        self.all_no.setToolTip("Answer every unanswered fibrosis box with No")
        self.all_no.clicked.connect(self._fill_no)
        fib.addWidget(self.all_no, row, 0, 1, 3)
        lay.addWidget(self.fib_box)

        lay.addWidget(QtWidgets.QLabel("Comment"))
        self.comment = QtWidgets.QPlainTextEdit()
        self.comment.setMaximumHeight(60)
        self.comment.textChanged.connect(self._changed)
        lay.addWidget(self.comment)
        self.missing_label = QtWidgets.QLabel("")
        self.missing_label.setWordWrap(True)
        self.missing_label.setObjectName("missingLabel")
        lay.addWidget(self.missing_label)
        lay.addStretch(1)
        # The lobe header of the fibrosis grid stays visible while its rows scroll: a copy of it
        # pinned to the top of the viewport once the real one has scrolled out of sight.
        self.frozen_header = QtWidgets.QFrame(self.viewport())
        self.frozen_header.setObjectName("frozenHeader")
        self.frozen_header.setAutoFillBackground(True)
        self.frozen_labels = []
        for lobe in LOBES:
            h = QtWidgets.QLabel(f"<b>{lobe}</b>", self.frozen_header)
            h.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            h.setToolTip(LOBE_NAMES[lobe])
            self.frozen_labels.append(h)
        self.frozen_header.hide()
        self.verticalScrollBar().valueChanged.connect(self._place_frozen_header)
        self._day90_toggled(False)

    # --- state ------------------------------------------------------------------------------
    @property
    def require_fibrosis(self) -> bool:
        return self.day90.isChecked()

    def form(self) -> ReadForm:
        fib = None
        if self.require_fibrosis:
            fib = {k: {lobe: cb.currentData() for lobe, cb in row.items()}
                   for k, row in self.fibrosis.items()}
        return ReadForm(
            severity={lobe: cb.currentData() for lobe, cb in self.severity.items()},
            fibrosis=fib,
            comment=self.comment.toPlainText(),
        )

    def set_form(self, form: ReadForm, day90: bool | None = None) -> None:
        if day90 is None:
            day90 = form.fibrosis is not None
        self.day90.setChecked(day90)
        for lobe, cb in self.severity.items():
            cb.setCurrentIndex(cb.findData(form.severity[lobe]) if form.severity[lobe] is not None else 0)
        for k, row in self.fibrosis.items():
            for lobe, cb in row.items():
                v = None if form.fibrosis is None else form.fibrosis[k][lobe]
                cb.setCurrentIndex(0 if v is None else (2 if v else 1))
        self.comment.setPlainText(form.comment)
        self._changed()

    def missing(self) -> list[str]:
        return self.form().missing(self.require_fibrosis)

    def _fill_no(self) -> None:
        for row in self.fibrosis.values():
            for cb in row.values():
                if cb.currentData() is None:
                    cb.setCurrentIndex(1)

    def _day90_toggled(self, on: bool) -> None:
        self.fib_box.setVisible(on)
        self._changed()
        QtCore.QTimer.singleShot(0, self._place_frozen_header)

    def resizeEvent(self, ev) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        super().resizeEvent(ev)
        QtCore.QTimer.singleShot(0, self._place_frozen_header)

    def _place_frozen_header(self, *args) -> None:  # type: ignore[no-untyped-def]
        """Show the pinned header while the grid's own header is above the viewport's top and
        the grid still fills it; its labels sit over the grid's columns."""
        vp = self.viewport()
        first = self.fib_headers[0]
        if not self.fib_box.isVisible():
            self.frozen_header.hide()
            return
        top = first.mapTo(vp, QtCore.QPoint(0, 0)).y()
        box_bottom = self.fib_box.mapTo(vp, QtCore.QPoint(0, self.fib_box.height())).y()
        h = first.height() + 4
        if top >= 0 or box_bottom <= h:
            self.frozen_header.hide()
            return
        self.frozen_header.setGeometry(0, 0, vp.width(), h)
        for real, copy in zip(self.fib_headers, self.frozen_labels, strict=True):
            x = real.mapTo(vp, QtCore.QPoint(0, 0)).x()
            copy.setGeometry(x, 2, real.width(), real.height())
        self.frozen_header.show()
        self.frozen_header.raise_()

    def _changed(self, *args) -> None:  # type: ignore[no-untyped-def]
        form = self.form()
        answered = sum(v is not None for v in form.severity.values())
        total = form.severity_total()
        self.total_label.setText(
            f"<b>Total: {total} / 25</b>"
            + ("" if answered == 5 else f"  ({5 - answered} lobe(s) unanswered)"))
        missing = form.missing(self.require_fibrosis)
        self.missing_label.setText(
            "Complete: ready to save." if not missing
            else f"{len(missing)} required answer(s) missing: " + ", ".join(missing[:8])
            + (" …" if len(missing) > 8 else "")
        )
        self.changed.emit()
