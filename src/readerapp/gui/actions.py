"""Every frequent command as one QAction with its shortcut and tooltip (menus, buttons and the
help page all use these, so they cannot disagree)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from ..editing import Mode
from .state import Tool

# name: (text, shortcuts, tooltip, checkable)
SPECS: dict[str, tuple[str, tuple[str, ...], str, bool]] = {
    "open": ("&Open scan folder…", ("Ctrl+O",), "Open a DICOM series folder", False),
    "open_labels": ("Open &label map…", ("Ctrl+L",), "Replace the labels with a NIfTI/NRRD file", False),
    "save": ("&Save read…", ("Ctrl+S",), "Save the read (labels, forms, endpoints)", False),
    "quit": ("&Quit", ("Ctrl+Q",), "Close ReaderApp (edits stay in the journal)", False),
    "undo": ("&Undo", ("Ctrl+Z",), "Undo the last stroke or tool", False),
    "redo": ("&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", False),
    "tool_navigate": ("Navigate", ("N", "Esc"), "Left drag: window/level; click: linked cursor", True),
    "tool_brush": ("Brush", ("B",), "Paint with the selected label", True),
    "tool_fill": ("Fill", ("F",), "Fill the connected region within the label's HU range", True),
    "tool_remove": ("Remove lesion", ("R",), "Click a lesion to remove it whole", True),
    "tool_ruler": ("Ruler", ("T",), "Drag to measure a distance (mm)", True),
    "tool_roi_ellipse": ("Ellipse ROI", ("E",), "Drag a box: area and mean, SD, min, max HU of the ellipse in it", True),
    "tool_roi_freehand": ("Freehand ROI", ("Shift+E",), "Drag a closed outline: area and HU statistics", True),
    "measure_delete": ("Delete last measurement", ("Shift+Del",), "Delete the newest ruler or ROI", False),
    "mode_ggo": ("GGO", ("1",), "Paint ground-glass opacity (−750 to −300 HU)", True),
    "mode_consolidation": ("Consolidation", ("2",), "Paint consolidation (−300 to 50 HU)", True),
    "mode_erase": ("Erase lesion", ("3",), "Lesion back to plain lung", True),
    "mode_lung_add": ("Lung +", ("4",), "Extend the lung boundary", True),
    "mode_lung_remove": ("Lung −", ("5",), "Cut from the lung (boundary editing)", True),
    "opt_sphere": ("3D sphere", ("D",), "Brush as a 3D sphere instead of a 2D disk", True),
    "opt_hu_limited": ("HU-limited", ("H",), "Brush changes only voxels in the label's HU range", True),
    "opt_keep_inside": ("Keep in lung", ("K",), "Lesions only inside the lung mask", True),
    "opt_fill_3d": ("Fill in 3D", ("Shift+F",), "Fill connects across slices", True),
    "interpolate": ("Fill between slices", ("I",), "Interpolate the object painted (or erased) on the last two painted slices", False),
    "opt_remove_3d": ("Remove in 3D", ("Shift+R",), "Remove lesion takes the whole 3D lesion (previewed) instead of this slice's piece", True),
    "apply_preview": ("Apply preview", ("Return", "Enter"), "Apply the previewed 3D edit (Esc cancels)", False),
    "brush_smaller": ("Smaller brush", ("[",), "Brush radius down", False),
    "brush_larger": ("Larger brush", ("]",), "Brush radius up", False),
    "overlay_toggle": ("Overlay", ("O",), "Show or hide the label overlay", True),
    "outline_toggle": ("Lung outline", ("Shift+O",), "Show or hide the lung outline", True),
    "preset_lung": ("Lung window", ("L",), "Window 1500, level −600", False),
    "preset_mediastinum": ("Mediastinum window", ("M",), "Window 400, level 40", False),
    "slice_next": ("Next slice", ("Up", "PgUp"), "Next slice in the active view", False),
    "slice_prev": ("Previous slice", ("Down", "PgDown"), "Previous slice in the active view", False),
    "maximize": ("Maximize view", ("X",), "Maximize or restore the active view", False),
    "reset_views": ("Reset views", ("Ctrl+0",), "Fit all views", False),
    "help": ("Help", ("F1",), "Show the keyboard and mouse help", False),
}

TOOLS = {"tool_navigate": Tool.NAVIGATE, "tool_brush": Tool.BRUSH, "tool_fill": Tool.FILL,
         "tool_remove": Tool.REMOVE, "tool_ruler": Tool.RULER, "tool_roi_ellipse": Tool.ROI_ELLIPSE,
         "tool_roi_freehand": Tool.ROI_FREEHAND}
MODES = {"mode_ggo": Mode.GGO, "mode_consolidation": Mode.CONSOLIDATION, "mode_erase": Mode.ERASE,
         "mode_lung_add": Mode.LUNG_ADD, "mode_lung_remove": Mode.LUNG_REMOVE}


def make_actions(parent, specs) -> dict[str, QtGui.QAction]:  # type: ignore[no-untyped-def]
    """One QAction per spec (name: (text, keys, tip, checkable)), added to ``parent`` so its
    shortcuts work anywhere in the window; the tooltip shows the keys."""
    actions: dict[str, QtGui.QAction] = {}
    for name, (text, keys, tip, checkable) in specs.items():
        a = QtGui.QAction(text, parent)
        a.setShortcuts([QtGui.QKeySequence(k) for k in keys])
        a.setToolTip(f"{tip} ({', '.join(keys)})")
        a.setStatusTip(tip)
        a.setCheckable(checkable)
        parent.addAction(a)
        actions[name] = a
    return actions


def build_actions(parent) -> dict[str, QtGui.QAction]:  # type: ignore[no-untyped-def]
    actions = make_actions(parent, SPECS)
    tools = QtGui.QActionGroup(parent)
    for n in TOOLS:
        tools.addAction(actions[n])
    modes = QtGui.QActionGroup(parent)
    for n in MODES:
        modes.addAction(actions[n])
    actions["tool_navigate"].setChecked(True)
    actions["mode_ggo"].setChecked(True)
    actions["opt_keep_inside"].setChecked(True)
    actions["overlay_toggle"].setChecked(True)
    actions["outline_toggle"].setChecked(True)
    return actions


#: Widgets that take typed keys: a single-key shortcut must not steal them.
_TYPING_WIDGETS = (QtWidgets.QComboBox, QtWidgets.QAbstractSpinBox, QtWidgets.QLineEdit,
                   QtWidgets.QTextEdit, QtWidgets.QPlainTextEdit)
_COMMAND_MODIFIERS = (QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.AltModifier
                      | QtCore.Qt.KeyboardModifier.MetaModifier)


class TypingGuard(QtCore.QObject):
    """Keeps plain keys with the form's and the tool panel's input widgets.

    The tools have single-key shortcuts (1-5, B, F, [ ...). Without this, typing "3" on a focused
    severity box switched the label to *Erase lesion* (and the tool to the brush) instead of
    choosing severity 3; typing a radius picked a label. Keys with Ctrl/Alt/Meta and the function
    keys (F1) stay shortcuts everywhere.
    """

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802
        if ev.type() != QtCore.QEvent.Type.ShortcutOverride or not isinstance(obj, _TYPING_WIDGETS):
            return False
        key_ev = ev  # a QKeyEvent
        if key_ev.modifiers() & _COMMAND_MODIFIERS:  # type: ignore[attr-defined]
            return False
        if QtCore.Qt.Key.Key_F1.value <= key_ev.key() <= QtCore.Qt.Key.Key_F35.value:  # type: ignore[attr-defined]
            return False
        ev.accept()  # the widget takes the key: no shortcut fires
        return True
