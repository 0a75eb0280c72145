"""PACS habits of the reading window: image numbers, Home/End, cine, typed window/level, the
bone and the scan's own window, crosshair on/off, thick-slab MIP/MinIP and layouts.

Kept out of ``main_window`` (which only installs it) so the window's module stays small: the
actions, the "Display" toolbar and the View menu entries are built here.
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from ..slicenum import index_for_instance
from .actions import make_actions

LAYOUTS = ("2x2", "1+3", "1x1")

# name: (text, shortcuts, tooltip, checkable)
SPECS: dict[str, tuple[str, tuple[str, ...], str, bool]] = {
    "slice_first": ("First slice", ("Home",), "First slice of the active view", False),
    "slice_last": ("Last slice", ("End",), "Last slice of the active view", False),
    "go_to_image": ("Go to image…", ("Ctrl+G",),
                    "Show an image by its PACS number (DICOM InstanceNumber)", False),
    "cine": ("Cine", ("P",), "Play or pause through the slices of the active view", True),
    "preset_bone": ("Bone window", ("Shift+B",), "Window 2000, level 400", False),
    "preset_scan": ("Scan's window", ("Shift+D",),
                    "The window stored in the scan (DICOM WindowCenter/WindowWidth)", False),
    "crosshair_toggle": ("Crosshair", ("C",), "Show or hide the linked crosshair", True),
    "layout_2x2": ("Layout 2×2", ("Ctrl+1",), "Four equal views", True),
    "layout_1+3": ("Layout 1+3", ("Ctrl+2",), "A large axial view and three small ones", True),
    "layout_1x1": ("Layout 1×1", ("Ctrl+3",), "The active view alone", True),
}


class DisplayTools(QtCore.QObject):
    """Installs the display actions on a :class:`MainWindow` and keeps its widgets in step."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.w = window
        self.state = window.state
        self.actions: dict[str, QtGui.QAction] = make_actions(window, SPECS)
        group = QtGui.QActionGroup(window)
        for n in LAYOUTS:
            group.addAction(self.actions[f"layout_{n}"])
        self.actions["layout_2x2"].setChecked(True)
        self.actions["crosshair_toggle"].setChecked(True)
        self.layout = "2x2"
        self.cine_timer = QtCore.QTimer(self)
        self.cine_fps = 10
        self.cine_timer.timeout.connect(self._cine_step)
        self._connect()
        self._build_toolbar()
        self._build_menu()

    # --- wiring -----------------------------------------------------------------------------
    def _connect(self) -> None:
        a, st = self.actions, self.state
        a["slice_first"].triggered.connect(lambda: self.go_to_end(first=True))
        a["slice_last"].triggered.connect(lambda: self.go_to_end(first=False))
        a["cine"].toggled.connect(self.set_cine)
        a["go_to_image"].triggered.connect(self.ask_image)
        a["preset_bone"].triggered.connect(lambda: st.preset("bone"))
        a["preset_scan"].triggered.connect(self.scan_window)
        a["crosshair_toggle"].toggled.connect(lambda v: st.set_display(crosshair=v))
        for n in LAYOUTS:
            a[f"layout_{n}"].triggered.connect(lambda _=False, n=n: self.set_layout(n))
        st.display_changed.connect(self._sync_fields)

    def _build_toolbar(self) -> None:
        tb = self.w.addToolBar("Display")
        tb.setObjectName("displayToolbar")
        tb.setMovable(False)
        self.toolbar = tb
        tb.addWidget(QtWidgets.QLabel(" W "))
        self.window_edit = QtWidgets.QLineEdit()
        self.level_edit = QtWidgets.QLineEdit()
        for e, tip in ((self.window_edit, "Window width (HU), typed; Enter applies"),
                       (self.level_edit, "Window level (HU), typed; Enter applies")):
            e.setValidator(QtGui.QDoubleValidator(-5000.0, 10000.0, 1, e))
            e.setMaximumWidth(self.w.fontMetrics().horizontalAdvance("-00000") + 12)
            e.setToolTip(tip)
            e.returnPressed.connect(self.apply_typed_window)
        tb.addWidget(self.window_edit)
        tb.addWidget(QtWidgets.QLabel(" L "))
        tb.addWidget(self.level_edit)
        for n in ("preset_bone", "preset_scan", None, "crosshair_toggle", "cine"):
            tb.addSeparator() if n is None else tb.addAction(self.actions[n])
        self.cine_spin = QtWidgets.QSpinBox()
        self.cine_spin.setRange(1, 30)
        self.cine_spin.setValue(self.cine_fps)
        self.cine_spin.setSuffix(" img/s")
        self.cine_spin.setToolTip("Cine speed (images per second)")
        self.cine_spin.valueChanged.connect(self.set_cine_fps)
        tb.addWidget(self.cine_spin)
        tb.addSeparator()
        self.slab_combo = QtWidgets.QComboBox()
        for text, mode in (("Slab off", "off"), ("MIP", "mip"), ("MinIP", "minip")):
            self.slab_combo.addItem(text, mode)
        self.slab_combo.setToolTip("Thick slab: maximum (MIP) or minimum (MinIP, ground glass and "
                                   "airways) intensity projection around the cursor's slice")
        self.slab_combo.currentIndexChanged.connect(
            lambda _i: self.state.set_display(slab_mode=self.slab_combo.currentData()))
        self.slab_spin = QtWidgets.QDoubleSpinBox()
        self.slab_spin.setRange(1.0, 100.0)
        self.slab_spin.setSingleStep(1.0)
        self.slab_spin.setDecimals(0)
        self.slab_spin.setSuffix(" mm")
        self.slab_spin.setValue(self.state.slab_mm)
        self.slab_spin.setToolTip("Slab thickness (mm)")
        self.slab_spin.valueChanged.connect(lambda v: self.state.set_display(slab_mm=v))
        tb.addWidget(self.slab_combo)
        tb.addWidget(self.slab_spin)
        tb.addSeparator()
        for n in LAYOUTS:
            tb.addAction(self.actions[f"layout_{n}"])
        self._sync_fields()

    def _build_menu(self) -> None:
        view = next((m.menu() for m in self.w.menuBar().actions() if m.text() == "&View"), None)
        if view is None:
            view = self.w.menuBar().addMenu("&View")
        view.addSeparator()
        for n in ("go_to_image", "slice_first", "slice_last", "cine", None, "preset_bone", "preset_scan",
                  "crosshair_toggle", None, *(f"layout_{n}" for n in LAYOUTS)):
            view.addSeparator() if n is None else view.addAction(self.actions[n])

    def _sync_fields(self) -> None:
        for e, v in ((self.window_edit, self.state.window), (self.level_edit, self.state.level)):
            if not e.hasFocus():
                e.setText(f"{v:.0f}")

    # --- commands ---------------------------------------------------------------------------
    def apply_typed_window(self) -> None:
        try:
            window = float(self.window_edit.text().replace("\u2212", "-"))
            level = float(self.level_edit.text().replace("\u2212", "-"))
        except ValueError:
            self.w.statusBar().showMessage("Window and level: type two numbers (HU)", 5000)
            return
        self.state.set_window(window, level)

    def scan_window(self) -> None:
        display = self.w.controller.display
        meta = getattr(getattr(display, "volume", None), "meta", None) or {}
        c, width = meta.get("window_center"), meta.get("window_width")
        if c is None or not width:
            self.w.statusBar().showMessage("This scan stores no window (WindowCenter/WindowWidth)",
                                           5000)
            return
        self.state.set_window(float(width), float(c))

    def go_to_end(self, *, first: bool) -> None:
        axis = self.w.active_axis if self.w.active_axis < 3 else 0
        c = list(self.state.cursor)
        c[axis] = 0 if first else self.state.shape[axis] - 1
        self.state.set_cursor(c)

    def go_to_image(self, number: int) -> None:
        """Show image ``number`` as the PACS numbers it (InstanceNumber) in the axial view."""
        display = self.w.controller.display
        if display is None:
            return
        z, note = index_for_instance(display.volume, int(number))
        if note:
            self.w.statusBar().showMessage(note, 10000)
            self.w.notes.append(note)
        c = list(self.state.cursor)
        c[0] = z
        self.state.set_cursor(c)

    def ask_image(self) -> None:
        """Ctrl+G: type the image number a colleague or the PACS quotes."""
        display = self.w.controller.display
        if display is None:
            return
        from ..slicenum import instance_numbers

        nums = instance_numbers(display.volume) or list(range(1, display.volume.shape[0] + 1))
        n, ok = QtWidgets.QInputDialog.getInt(self.w, "Go to image", "Image number (as on the PACS):",
                                              nums[self.state.cursor[0]], min(nums), max(nums))
        if ok:
            self.go_to_image(n)

    def set_cine_fps(self, fps: int) -> None:
        self.cine_fps = int(fps)
        if self.cine_timer.isActive():
            self.cine_timer.start(int(1000 / max(self.cine_fps, 1)))

    def set_cine(self, on: bool) -> None:
        if on and self.w.controller.display is not None:
            self.cine_timer.start(int(1000 / max(self.cine_fps, 1)))
        else:
            self.cine_timer.stop()
        if self.actions["cine"].isChecked() != self.cine_timer.isActive():
            self.actions["cine"].setChecked(self.cine_timer.isActive())

    def _cine_step(self) -> None:
        if self.w.controller.display is None:
            self.set_cine(False)
            return
        axis = self.w.active_axis if self.w.active_axis < 3 else 0
        c = list(self.state.cursor)
        c[axis] = (c[axis] + 1) % self.state.shape[axis]  # loops, as PACS cine does
        self.state.set_cursor(c)

    def set_layout(self, name: str) -> None:
        """2x2: four equal views; 1+3: a large axial (left) and three small ones; 1x1: the
        active view alone."""
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}")
        w = self.w
        grid: QtWidgets.QGridLayout = w.grid
        for v in w.views:
            grid.removeWidget(v)
        for i in range(4):
            grid.setRowStretch(i, 0)
            grid.setColumnStretch(i, 0)
        w.maximized_view = None
        if name == "2x2":
            for v, (r, c) in zip(w.views, [(0, 0), (0, 1), (1, 0), (1, 1)], strict=True):
                grid.addWidget(v, r, c)
                v.setVisible(True)
            for i in range(2):
                grid.setRowStretch(i, 1)
                grid.setColumnStretch(i, 1)
        elif name == "1+3":
            grid.addWidget(w.views[0], 0, 0, 3, 1)
            for i, v in enumerate(w.views[1:]):
                grid.addWidget(v, i, 1)
                grid.setRowStretch(i, 1)
            for v in w.views:
                v.setVisible(True)
            grid.setColumnStretch(0, 3)
            grid.setColumnStretch(1, 1)
        else:
            active = w.views[w.active_axis] if w.active_axis < len(w.views) else w.views[0]
            for i, v in enumerate(w.views):
                grid.addWidget(v, 0, i)
                v.setVisible(v is active)
            grid.setRowStretch(0, 1)
        self.layout = name
        self.actions[f"layout_{name}"].setChecked(True)
        QtCore.QTimer.singleShot(0, w.reset_views)
