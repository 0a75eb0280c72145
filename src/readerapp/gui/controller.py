"""Turns mouse and key input into core edits; the views and panels only listen.

All editing logic is in ``readerapp.editing``; this adapter picks the tool's candidates, calls the
editor, and emits ``voxels_changed`` so the views redraw only what an edit touched and the
numbers update at once (within the same event, i.e. within a frame).
"""

from __future__ import annotations

import contextlib
import functools
import time
import weakref
from collections.abc import Generator
from types import SimpleNamespace
from typing import Any

import numpy as np
from PySide6 import QtCore

from ..editing import (
    Edit,
    EditPlan,
    Mode,
    PaintOptions,
    brush_tool,
    connected_lesion,
    connected_region,
    describe_edit,
    interpolate_object,
    slice_coords,
    slice_mask,
)
from ..editing.session import ReadingSession
from ..labels import LABEL_HU_RANGE, Label
from .measuring import MeasureController
from .state import Tool, ToolSettings

#: What "Fill between slices" remembers of each brush stroke: the view's axis, the slice the
#: stroke was drawn on, its mode and options, the voxels it changed on that slice, and the step
#: itself (an undone stroke stops being a key slice).
KeyStroke = tuple[int, int, Mode, PaintOptions, np.ndarray, Edit]
BRUSH_SIZES_MM = (1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0)

MODE_LABEL = {Mode.GGO: Label.GGO, Mode.CONSOLIDATION: Label.CONSOLIDATION}


class EditController(QtCore.QObject):
    voxels_changed = QtCore.Signal(object)  # flat indices (int64) of changed voxels
    step_done = QtCore.Signal()  # an undo step finished (stroke end, undo, redo)
    settings_changed = QtCore.Signal()
    message = QtCore.Signal(str)
    preview_changed = QtCore.Signal()  # a previewed edit appeared, was applied or cancelled

    def __init__(self) -> None:
        super().__init__()
        self.session: ReadingSession | None = None
        #: What the views draw: the session, or a preview (CT only) while segmentation runs.
        self.display: Any = None
        self.settings = ToolSettings()
        self._stroke: Generator[int, Any, None] | None = None
        self._wired: weakref.WeakSet[ReadingSession] = weakref.WeakSet()
        self._axis = 0
        self._keys: list[KeyStroke] = []  # brush strokes, most recent last (for interpolation)
        self._stroke_meta: tuple[int, int, Mode, PaintOptions] | None = None
        #: A worked-out edit shown in the views and waiting for the reader's go (3D tools).
        self.pending: EditPlan | None = None
        self._pending_zyx: tuple[np.ndarray, ...] | None = None
        #: Asks the reader a yes/no question (the window sets a dialog; tests, a recorder).
        self.confirm: Any = lambda text: True
        #: Rulers and ROIs (kept in the session, saved with the read).
        self.measure = MeasureController(self)
        #: Seconds from each brush event to updated endpoints (for the benchmark and the HUD).
        self.event_latencies: list[float] = []
        #: Why edits are refused just now (e.g. the read is being saved), or None.
        self.busy: str | None = None

    def _refuse(self) -> bool:
        """True (and a message) while edits are refused."""
        if self.busy is None:
            return False
        self.message.emit(f"Not now: {self.busy}")
        return True

    def show_preview(self, volume) -> None:  # type: ignore[no-untyped-def]
        """Show a CT before its label map exists (nothing can be edited yet)."""
        self.session = None
        self.display = SimpleNamespace(volume=volume, labels=np.zeros(volume.shape, np.uint8))

    def set_session(self, session: ReadingSession | None) -> None:
        self.session = session
        self.display = session
        self._keys.clear()
        self.cancel_pending()
        # A session set again must not subscribe twice (each edit would be signalled twice:
        # numbers and redraws done twice per mouse event).
        if session is not None and session not in self._wired:
            self._wired.add(session)
            session.editor.subscribe(self._on_change)
            session.editor.subscribe_steps(functools.partial(self._on_step, session))

    def _on_step(self, session: ReadingSession, kind: str, edit: Edit) -> None:
        """Every finished step: remember brush strokes, say what changed in mL, redraw."""
        if session is self.session:
            if kind == "edit" and self._stroke_meta is not None and edit.name.startswith("brush"):
                axis, s, mode, opts = self._stroke_meta
                on = edit.idx[slice_coords(edit.idx, session.labels.shape, axis) == s]
                if on.size:
                    self._keys.append((axis, s, mode, opts, on.astype(np.int64), edit))
                    del self._keys[:-8]
            elif kind == "undo":
                self._keys = [k for k in self._keys if k[5] is not edit]
            if self.pending is not None:  # the labels moved under the preview: work it out again
                self.cancel_pending()
            ml = session.volume.voxel_volume_ml
            what = {"edit": edit.name, "undo": f"Undo {edit.name}", "redo": f"Redo {edit.name}"}[kind]
            text = describe_edit(edit, ml, reverse=kind == "undo")
            self.message.emit(f"{what[0].upper()}{what[1:]}: {text}")
        self.step_done.emit()

    def _on_change(self, idx: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        self.voxels_changed.emit(idx)

    # --- settings ---------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        if tool is not self.settings.tool:
            self.cancel_pending()
        self.settings.tool = tool
        self.settings_changed.emit()

    def set_mode(self, mode: Mode) -> None:
        self.settings.mode = mode
        if self.settings.tool is Tool.NAVIGATE:
            self.settings.tool = Tool.BRUSH
        self.settings_changed.emit()

    def set_option(self, **kw) -> None:  # type: ignore[no-untyped-def]
        for k, v in kw.items():
            setattr(self.settings, k, v)
        self.settings_changed.emit()

    def change_brush(self, delta: int) -> None:
        r = self.settings.radius_mm
        i = int(np.argmin([abs(s - r) for s in BRUSH_SIZES_MM]))
        i = min(max(i + delta, 0), len(BRUSH_SIZES_MM) - 1)
        self.settings.radius_mm = BRUSH_SIZES_MM[i]
        self.settings_changed.emit()

    def options(self) -> PaintOptions:
        st = self.settings
        hu_range = None
        if st.hu_limited:
            label = MODE_LABEL.get(st.mode)
            if label is not None:
                hu_range = LABEL_HU_RANGE[label]
        return PaintOptions(keep_inside_lung=st.keep_inside_lung, hu_range=hu_range)

    # --- brush ------------------------------------------------------------------------------
    def begin_paint(self, axis: int, zyx) -> None:  # type: ignore[no-untyped-def]
        if self.session is None or self._refuse():
            return
        self.end_paint()  # a stroke left open must end as its own step, never be split later
        st = self.settings
        stroke = brush_tool(
            self.session.editor, st.mode, st.radius_mm, self.session.volume.spacing_zyx,
            plane_axis=None if st.sphere else axis, options=self.options(),
        )
        next(stroke)
        self._stroke = stroke
        self._axis = axis
        self._stroke_meta = (axis, int(round(zyx[axis])), st.mode, self.options())
        self.move_paint(zyx)

    def move_paint(self, zyx) -> None:  # type: ignore[no-untyped-def]
        if self._stroke is None:
            return
        t0 = time.perf_counter()
        self._stroke.send(tuple(float(v) for v in zyx))
        self.event_latencies.append(time.perf_counter() - t0)

    def end_paint(self) -> None:
        if self._stroke is None:
            return
        stroke, self._stroke = self._stroke, None
        try:
            with contextlib.suppress(StopIteration):
                stroke.send(None)
        finally:
            self._stroke_meta = None

    # --- one-click tools --------------------------------------------------------------------
    def click_tool(self, axis: int, zyx) -> None:  # type: ignore[no-untyped-def]
        if self.session is None or self._refuse():
            return
        if self.pending is not None:  # a second click inside the preview applies it
            inside = self._pending_contains(zyx)
            if inside:
                self.apply_pending()
                return
            self.cancel_pending()
        st = self.settings
        if st.tool is Tool.FILL:
            self._fill(axis, zyx)
        elif st.tool is Tool.REMOVE:
            self._remove(axis, zyx)

    def _fill(self, axis: int, zyx) -> None:  # type: ignore[no-untyped-def]
        if self._refuse():
            return
        s = self.session
        assert s is not None
        st = self.settings
        mode = st.mode
        rng: tuple[float, float] = st.fill_range or LABEL_HU_RANGE[MODE_LABEL.get(mode, Label.GGO)]
        radius = float(st.fill_radius_mm)
        idx = connected_region(
            s.volume.hu, s.labels, zyx, rng,
            plane_axis=None if st.fill_3d else axis, inside_lung=st.keep_inside_lung,
            radius_mm=radius, spacing_zyx=s.volume.spacing_zyx,
        )
        if idx.size == 0:
            self.message.emit(f"Fill: the voxel clicked is not within {rng[0]:g}..{rng[1]:g} HU")
            return
        opts = PaintOptions(keep_inside_lung=st.keep_inside_lung)
        if st.fill_3d:  # bounded and previewed: shown first, applied on a second click or Enter
            plan = s.editor.plan(idx, mode, opts, name=f"fill 3D {mode.value}",
                                 note=f"within {radius:g} mm of the click")
            self._show_pending(plan, "Fill in 3D")
            return
        s.editor.apply_mode(idx, mode, opts, name=f"fill {mode.value}")

    def _remove(self, axis: int, zyx) -> None:  # type: ignore[no-untyped-def]
        if self._refuse():
            return
        s = self.session
        assert s is not None
        if self.settings.remove_3d:
            idx = connected_lesion(s.labels, zyx)
        else:  # by default only the lesion's piece on this slice: the edit stays where one points
            idx = connected_lesion(s.labels, zyx, plane_axis=axis)
        if idx.size == 0:
            self.message.emit("Remove lesion: click on a lesion (GGO or consolidation)")
            return
        if self.settings.remove_3d:
            plan = s.editor.plan(idx, Mode.ERASE, name="remove lesion 3D")
            self._show_pending(plan, "Remove lesion in 3D")
            return
        s.editor.apply_mode(idx, Mode.ERASE, name="remove lesion (this slice)")

    # --- previewed edits --------------------------------------------------------------------
    def _show_pending(self, plan: EditPlan, title: str) -> None:
        s = self.session
        assert s is not None
        if len(plan) == 0:
            self.message.emit(f"{title}: nothing would change")
            return
        plan.idx = np.sort(plan.idx)  # for the look-up of a click inside it
        self.pending = plan
        self._pending_zyx = np.unravel_index(plan.idx.astype(np.int64), s.labels.shape)
        z = self._pending_zyx[0]
        ml = plan.volume_ml(s.volume.voxel_volume_ml)
        note = f", {plan.note}" if plan.note else ""
        self.message.emit(
            f"{title} (preview, outlined in red): {ml:.2f} mL over slices {int(z.min()) + 1}-"
            f"{int(z.max()) + 1}{note}. Click inside it again or press Enter to apply, Esc to cancel."
        )
        self.preview_changed.emit()

    def pending_ml(self) -> float:
        if self.pending is None or self.session is None:
            return 0.0
        return self.pending.volume_ml(self.session.volume.voxel_volume_ml)

    def _pending_contains(self, zyx) -> bool:  # type: ignore[no-untyped-def]
        if self.pending is None or self.session is None:
            return False
        c = tuple(int(round(v)) for v in zyx)
        if not all(0 <= ci < n for ci, n in zip(c, self.session.labels.shape, strict=False)):
            return False
        flat = int(np.ravel_multi_index(c, self.session.labels.shape))
        i = int(np.searchsorted(self.pending.idx, flat))
        return i < self.pending.idx.size and int(self.pending.idx[i]) == flat

    def overlays(self, axis: int, s: int) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
        """Lines a slice view draws over the slice (2D masks in index order, with colours): the
        previewed edit's outline and the measurements."""
        from .slice_view import outline
        from .state import COLOURS

        out = []
        pm = self.preview_slice(axis, s)
        if pm is not None:
            out.append((outline(pm), COLOURS["preview"]))
        return out + self.measure.overlays(axis, s)

    def preview_slice(self, axis: int, s: int) -> np.ndarray | None:
        """The pending edit's voxels on one slice (2D, index order), or None."""
        if self.pending is None or self.session is None or self._pending_zyx is None:
            return None
        if not np.any(self._pending_zyx[axis] == s):
            return None
        return slice_mask(self.pending.idx, self.session.labels.shape, axis, s)

    def apply_pending(self) -> Edit | None:
        """Apply the previewed edit (asking first when it is larger than the reader's limit)."""
        plan, s = self.pending, self.session
        if plan is None or s is None or self._refuse():  # kept pending while a save runs
            return None
        ml = plan.volume_ml(s.volume.voxel_volume_ml)
        if ml > self.settings.confirm_ml and not self.confirm(
            f"This {plan.name} changes {ml:.1f} mL (more than your limit of "
            f"{self.settings.confirm_ml:g} mL). Apply it?"
        ):
            self.message.emit(f"{plan.name}: not applied")
            self.cancel_pending(quiet=True)
            return None
        self.pending, self._pending_zyx = None, None
        edit = s.editor.apply_plan(plan)
        self.preview_changed.emit()
        return edit

    def cancel_pending(self, quiet: bool = False) -> None:
        if self.pending is None:
            return
        name = self.pending.name
        self.pending, self._pending_zyx = None, None
        if not quiet:
            self.message.emit(f"{name}: preview cancelled, nothing changed")
        self.preview_changed.emit()

    def interpolate(self) -> None:
        """Fill between the last two slices painted in the same view with the same label: only the
        object painted, only plain lung gets the label (or, erasing, only that object is erased)."""
        if self.session is None or self._refuse():
            return
        last = self._keys[-1] if self._keys else None
        other = None
        if last is not None:
            other = next((k for k in reversed(self._keys[:-1])
                          if k[0] == last[0] and k[1] != last[1] and k[2] is last[2]), None)
        if last is None or other is None:
            self.message.emit("Fill between slices: paint (or erase) the same label on two slices "
                              "of one view first")
            return
        axis, mode = last[0], last[2]
        label = MODE_LABEL.get(mode)
        if label is None and mode is not Mode.ERASE:
            self.message.emit("Fill between slices works with GGO, consolidation or Erase lesion")
            return
        idx = interpolate_object(self.session.labels, axis, other[1], other[4], last[1], last[4], label)
        opts = last[3]
        if label is not None:
            opts = PaintOptions(keep_inside_lung=True, hu_range=opts.hu_range,
                                only_labels=(int(Label.LUNG),))
        lo, hi = sorted((other[1], last[1]))
        e = self.session.editor.apply_mode(idx, mode, opts,
                                           name=f"fill between slices {lo + 1}-{hi + 1} ({mode.value})")
        if e is None:
            self.message.emit(f"Fill between slices {lo + 1} and {hi + 1}: nothing to change")

    def undo(self) -> None:
        if self.session is not None and not self._refuse() and self.session.editor.undo() is None:
            self.message.emit("Nothing to undo")

    def redo(self) -> None:
        if self.session is not None and not self._refuse() and self.session.editor.redo() is None:
            self.message.emit("Nothing to redo")
