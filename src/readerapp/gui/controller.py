"""Turns mouse and key input into core edits; the views and panels only listen.

All editing logic is in ``readerapp.editing``; this adapter picks the tool's candidates, calls the
editor, and emits ``voxels_changed`` so the views redraw only what an edit touched and the
numbers update at once (within the same event, i.e. within a frame).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Generator
from types import SimpleNamespace
from typing import Any

import numpy as np
from PySide6 import QtCore

from ..editing import (
    Mode,
    PaintOptions,
    brush_tool,
    connected_lesion,
    connected_region,
    interpolate_between,
)
from ..editing.session import ReadingSession
from ..labels import LABEL_HU_RANGE, Label
from .state import Tool, ToolSettings

FILL_RADIUS_MM = 120.0
BRUSH_SIZES_MM = (1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0)

MODE_LABEL = {Mode.GGO: Label.GGO, Mode.CONSOLIDATION: Label.CONSOLIDATION}


class EditController(QtCore.QObject):
    voxels_changed = QtCore.Signal(object)  # flat indices (int64) of changed voxels
    step_done = QtCore.Signal()  # an undo step finished (stroke end, undo, redo)
    settings_changed = QtCore.Signal()
    message = QtCore.Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.session: ReadingSession | None = None
        #: What the views draw: the session, or a preview (CT only) while segmentation runs.
        self.display: Any = None
        self.settings = ToolSettings()
        self._stroke: Generator[int, Any, None] | None = None
        self._wired: weakref.WeakSet[ReadingSession] = weakref.WeakSet()
        self._axis = 0
        self._painted_slices: list[tuple[int, int]] = []  # (axis, slice) most recent last
        self._last_label_mode: Mode = Mode.GGO
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
        self._painted_slices.clear()
        # A session set again must not subscribe twice (each edit would be signalled twice:
        # numbers and redraws done twice per mouse event).
        if session is not None and session not in self._wired:
            self._wired.add(session)
            session.editor.subscribe(self._on_change)
            session.editor.subscribe_steps(lambda kind, edit: self.step_done.emit())

    def _on_change(self, idx: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        self.voxels_changed.emit(idx)

    # --- settings ---------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        self.settings.tool = tool
        self.settings_changed.emit()

    def set_mode(self, mode: Mode) -> None:
        self.settings.mode = mode
        if mode in MODE_LABEL:
            self._last_label_mode = mode
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
        self.move_paint(zyx)

    def move_paint(self, zyx) -> None:  # type: ignore[no-untyped-def]
        if self._stroke is None:
            return
        t0 = time.perf_counter()
        self._stroke.send(tuple(float(v) for v in zyx))
        self.event_latencies.append(time.perf_counter() - t0)
        s = int(round(zyx[self._axis]))
        if not self._painted_slices or self._painted_slices[-1] != (self._axis, s):
            self._painted_slices.append((self._axis, s))
            del self._painted_slices[:-8]

    def end_paint(self) -> None:
        if self._stroke is None:
            return
        stroke, self._stroke = self._stroke, None
        with contextlib.suppress(StopIteration):
            stroke.send(None)

    # --- one-click tools --------------------------------------------------------------------
    def click_tool(self, axis: int, zyx) -> None:  # type: ignore[no-untyped-def]
        if self.session is None or self._refuse():
            return
        ed = self.session.editor
        st = self.settings
        if st.tool is Tool.FILL:
            mode = st.mode
            rng: tuple[float, float] = st.fill_range or LABEL_HU_RANGE[MODE_LABEL.get(mode, Label.GGO)]
            # A 3D fill searches at most FILL_RADIUS_MM around the click (fast on any scan).
            reach = tuple(int(FILL_RADIUS_MM / sp) + 1 for sp in self.session.volume.spacing_zyx)
            idx = connected_region(
                self.session.volume.hu, self.session.labels, zyx, rng,
                plane_axis=None if st.fill_3d else axis, inside_lung=st.keep_inside_lung,
                max_radius_vox=reach,
            )
            if idx.size == 0:
                self.message.emit(f"Fill: the voxel clicked is not within {rng[0]:g}..{rng[1]:g} HU")
                return
            e = ed.apply_mode(idx, mode, PaintOptions(keep_inside_lung=st.keep_inside_lung),
                              name=f"fill {mode.value}")
            self.message.emit(f"Fill: {len(e) if e else 0} voxels changed")
        elif st.tool is Tool.REMOVE:
            idx = connected_lesion(self.session.labels, zyx)
            if idx.size == 0:
                self.message.emit("Remove lesion: click on a lesion (GGO or consolidation)")
                return
            e = ed.apply_mode(idx, Mode.ERASE, name="remove lesion")
            self.message.emit(f"Removed a lesion of {len(e) if e else 0} voxels")

    def interpolate(self) -> None:
        """Fill between the last two slices painted (same view), with the last lesion label."""
        if self.session is None or self._refuse():
            return
        pairs = self._painted_slices
        last = pairs[-1] if pairs else None
        other = next((p for p in reversed(pairs) if last and p[0] == last[0] and p[1] != last[1]), None)
        if last is None or other is None:
            self.message.emit("Fill between slices: paint the lesion on two slices first")
            return
        axis = last[0]
        mode = self._last_label_mode
        idx = interpolate_between(self.session.labels, MODE_LABEL[mode], axis, other[1], last[1])
        e = self.session.editor.apply_mode(idx, mode, self.options(), name="fill between slices")
        self.message.emit(
            f"Filled between slices {min(other[1], last[1]) + 1} and {max(other[1], last[1]) + 1}: "
            f"{len(e) if e else 0} voxels"
        )

    def undo(self) -> None:
        if self.session is not None and not self._refuse() and self.session.editor.undo() is None:
            self.message.emit("Nothing to undo")

    def redo(self) -> None:
        if self.session is not None and not self._refuse() and self.session.editor.redo() is None:
            self.message.emit("Nothing to redo")
