"""Tool palette and help: buttons bound to the window's actions (so shortcuts and buttons are one
thing), brush and overlay settings, and a help page generated from the same actions."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from ..editing import Mode
from .actions import MODES, TOOLS
from .state import Tool, ViewState


def _button(action: QtGui.QAction) -> QtWidgets.QToolButton:
    b = QtWidgets.QToolButton()
    b.setDefaultAction(action)
    b.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextOnly)
    b.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
    return b


class ToolsPanel(QtWidgets.QWidget):
    def __init__(self, actions: dict[str, QtGui.QAction], controller, state: ViewState,  # type: ignore[no-untyped-def]
                 parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.state = state
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        def grid(title: str, names: list[str], cols: int = 2) -> None:
            box = QtWidgets.QGroupBox(title)
            g = QtWidgets.QGridLayout(box)
            g.setSpacing(3)
            for i, n in enumerate(names):
                g.addWidget(_button(actions[n]), i // cols, i % cols)
            lay.addWidget(box)

        grid("Tool", ["tool_navigate", "tool_brush", "tool_fill", "tool_remove"])
        grid("Measure", ["tool_ruler", "tool_roi_ellipse", "tool_roi_freehand", "measure_delete"])
        grid("Label", ["mode_ggo", "mode_consolidation", "mode_erase", "mode_lung_add",
                       "mode_lung_remove"])
        opts = QtWidgets.QGroupBox("Brush and fill")
        f = QtWidgets.QFormLayout(opts)
        self.radius = QtWidgets.QDoubleSpinBox()
        self.radius.setRange(0.5, 50.0)
        self.radius.setSingleStep(1.0)
        self.radius.setSuffix(" mm")
        self.radius.setToolTip("Brush radius ([ and ] or Ctrl + wheel)")
        self.radius.valueChanged.connect(lambda v: controller.set_option(radius_mm=float(v)))
        f.addRow("Radius", self.radius)
        row = QtWidgets.QGridLayout()
        for i, n in enumerate(["opt_sphere", "opt_hu_limited", "opt_keep_inside", "opt_fill_3d",
                               "opt_remove_3d", "apply_preview"]):
            b = _button(actions[n])
            row.addWidget(b, i // 2, i % 2)
        f.addRow(row)
        self.fill_radius = QtWidgets.QDoubleSpinBox()
        self.fill_radius.setRange(2.0, 200.0)
        self.fill_radius.setSingleStep(5.0)
        self.fill_radius.setSuffix(" mm")
        self.fill_radius.setToolTip("A 3D fill reaches at most this far from the click")
        self.fill_radius.valueChanged.connect(lambda v: controller.set_option(fill_radius_mm=float(v)))
        f.addRow("3D fill reach", self.fill_radius)
        self.confirm_ml = QtWidgets.QDoubleSpinBox()
        self.confirm_ml.setRange(0.0, 5000.0)
        self.confirm_ml.setSingleStep(5.0)
        self.confirm_ml.setSuffix(" mL")
        self.confirm_ml.setToolTip("A previewed 3D edit larger than this asks before it is applied")
        self.confirm_ml.valueChanged.connect(lambda v: controller.set_option(confirm_ml=float(v)))
        f.addRow("Ask above", self.confirm_ml)
        f.addRow(_button(actions["interpolate"]))
        lay.addWidget(opts)

        ov = QtWidgets.QGroupBox("Display")
        o = QtWidgets.QFormLayout(ov)
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Overlay opacity (O toggles the overlay)")
        self.opacity.valueChanged.connect(lambda v: state.set_overlay(opacity=v / 100.0))
        o.addRow("Overlay", self.opacity)
        r2 = QtWidgets.QGridLayout()
        r2.addWidget(_button(actions["overlay_toggle"]), 0, 0)
        r2.addWidget(_button(actions["outline_toggle"]), 0, 1)
        r2.addWidget(_button(actions["preset_lung"]), 1, 0, 1, 2)
        r2.addWidget(_button(actions["preset_mediastinum"]), 2, 0, 1, 2)
        o.addRow(r2)
        lay.addWidget(ov)
        undo = QtWidgets.QHBoxLayout()
        undo.addWidget(_button(actions["undo"]))
        undo.addWidget(_button(actions["redo"]))
        lay.addLayout(undo)
        self.history_label = QtWidgets.QLabel("")
        self.history_label.setObjectName("historyLabel")
        lay.addWidget(self.history_label)
        lay.addStretch(1)
        self.sync()

    def sync(self) -> None:
        st = self.controller.settings
        self.radius.blockSignals(True)
        self.radius.setValue(st.radius_mm)
        self.radius.blockSignals(False)
        for box, value in ((self.fill_radius, st.fill_radius_mm), (self.confirm_ml, st.confirm_ml)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self.opacity.blockSignals(True)
        self.opacity.setValue(int(round(self.state.overlay_opacity * 100)))
        self.opacity.blockSignals(False)
        s = self.controller.session
        if s is not None:
            ed = s.editor
            kb = ed.history_bytes / 1024
            self.history_label.setText(
                f"Undo steps: {ed.undo_depth}  (history {kb:,.0f} kB"
                + (f", {ed.dropped_steps} oldest dropped" if ed.dropped_steps else "") + ")"
            )


def help_html(actions: dict[str, QtGui.QAction]) -> str:
    rows = []
    for a in actions.values():
        keys = ", ".join(s.toString(QtGui.QKeySequence.SequenceFormat.NativeText) for s in a.shortcuts())
        if keys:
            name = a.text().replace("&", "").rstrip("…")
            tip = a.statusTip()
            rows.append(f"<tr><td><b>{keys}</b></td><td>{name}"
                        + (f" — {tip}" if tip and tip != name else "") + "</td></tr>")
    mouse = [
        ("Wheel", "next / previous slice (Shift: 5 slices)"),
        ("Ctrl + wheel", "brush size"),
        ("Right drag", "zoom"),
        ("Middle drag, Shift + left drag", "pan"),
        ("Left drag (Navigate)", "window / level"),
        ("Left click (Navigate), Ctrl + left click", "move the linked cursor"),
        ("Left drag (Brush)", "paint one stroke = one undo step"),
        ("Left click (Fill / Remove)", "fill the connected region / remove the lesion's piece on "
         "this slice; in 3D the extent is previewed in red: click inside it again or press Enter "
         "to apply, Esc to cancel"),
        ("Left drag (Ruler, Ellipse ROI, Freehand ROI)", "measure a distance / an area with mean, "
         "SD, min and max HU; listed in the Measurements tab and saved with the read"),
        ("Double-click", "maximize or restore the view (edits nothing)"),
    ]
    mrows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in mouse)
    return (
        "<h3>Keyboard</h3><table cellspacing=4>" + "".join(rows) + "</table>"
        "<h3>Mouse</h3><table cellspacing=4>" + mrows + "</table>"
        "<h3>Never losing work</h3><p>Every finished stroke is written to a journal on disk at "
        "once. After a crash, open the same scan again and accept the offer to restore.</p>"
    )


#: The action of each tool and label: the inverse of :data:`.actions.TOOLS` and ``MODES``.
TOOL_ACTIONS: dict[Tool, str] = {tool: name for name, tool in TOOLS.items()}
MODE_ACTIONS: dict[Mode, str] = {mode: name for name, mode in MODES.items()}
