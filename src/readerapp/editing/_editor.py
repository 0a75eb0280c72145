"""The label editor: one owner of the label map, every change a sparse, undoable edit.

Why sparse: a stroke touches thousands of voxels of a volume of a hundred million; storing only the
changed flat indices with their old and new values (never a copy of the volume) keeps undo
unlimited within a memory budget (3D Slicer's whole-volume undo needed over 100 GB on large scans).

Listeners (the live densitometry accumulator, the view's overlay) get ``(flat_idx, old, new)`` for
every change, so they update from the changed voxels only. One stroke (press, moves, release) is
one undo step; the journal, if attached, receives each finished step and fsyncs it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..labels import PADDING_BELOW_HU, Label

ChangeListener = Callable[[np.ndarray, np.ndarray, np.ndarray], None]

#: Default undo memory budget: about 90 million changed voxels at 6 bytes each.
DEFAULT_UNDO_BUDGET_BYTES = 512 * 1024 * 1024


class Mode(Enum):
    """What a brush or a fill does to the voxels under it."""

    GGO = "ggo"  # paint ground glass (label 2)
    CONSOLIDATION = "consolidation"  # paint consolidation (label 3)
    ERASE = "erase"  # lesion back to plain lung (2, 3 -> 1)
    LUNG_ADD = "lung_add"  # extend the lung (0 -> 1)
    LUNG_REMOVE = "lung_remove"  # cut from the lung (1, 2, 3 -> 0)


@dataclass
class PaintOptions:
    #: Lesion painting only where the voxel is already lung (labels 1-3).
    keep_inside_lung: bool = True
    #: HU-limited brush: only voxels with lo <= HU < hi change (``None``: any HU).
    hu_range: tuple[float, float] | None = None
    #: Only voxels that now carry one of these labels change (``None``: as the mode allows).
    #: Interpolation paints with ``(Label.LUNG,)``: it never relabels another lesion.
    only_labels: tuple[int, ...] | None = None


@dataclass
class Edit:
    """One undo step: the changed voxels with their values before and after."""

    idx: np.ndarray  # flat C-order indices, uint32 (or int64 for huge volumes), sorted
    old: np.ndarray  # uint8
    new: np.ndarray  # uint8
    name: str = "edit"

    @property
    def nbytes(self) -> int:
        return int(self.idx.nbytes + self.old.nbytes + self.new.nbytes)

    def __len__(self) -> int:
        return int(self.idx.size)


def merge_chunks(chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], name: str) -> Edit | None:
    """Combine a stroke's dabs into one edit: first old value and last new value per voxel."""
    if not chunks:
        return None
    idx = np.concatenate([c[0] for c in chunks])
    old = np.concatenate([c[1] for c in chunks])
    new = np.concatenate([c[2] for c in chunks])
    order = np.argsort(idx, kind="stable")
    idx, old, new = idx[order], old[order], new[order]
    if idx.size > 1 and np.any(idx[1:] == idx[:-1]):
        first = np.r_[True, idx[1:] != idx[:-1]]
        last = np.r_[idx[1:] != idx[:-1], True]
        idx, old, new = idx[first], old[first], new[last]
    keep = old != new
    if not keep.any():
        return None
    return Edit(idx[keep], old[keep], new[keep], name)


def target_values(
    mode: Mode, cur: np.ndarray, hu: np.ndarray, options: PaintOptions
) -> tuple[np.ndarray, np.ndarray]:
    """The editing rule in one place: which of the candidate voxels change, and to what.

    ``cur`` and ``hu`` are the current labels and HU of the candidates. Returns a boolean mask
    over the candidates and their new labels. Padding voxels outside the field of view never
    change, whatever the mode.
    """
    ok = hu >= PADDING_BELOW_HU
    if options.only_labels is not None:
        ok &= np.isin(cur, np.asarray(options.only_labels, dtype=np.uint8))
    if options.hu_range is not None:
        lo, hi = options.hu_range
        ok &= (hu >= lo) & (hu < hi)
    if mode in (Mode.GGO, Mode.CONSOLIDATION):
        value = Label.GGO if mode is Mode.GGO else Label.CONSOLIDATION
        if options.keep_inside_lung:
            ok &= cur != Label.OUTSIDE
        ok &= cur != value
    elif mode is Mode.ERASE:
        value = Label.LUNG
        ok &= (cur == Label.GGO) | (cur == Label.CONSOLIDATION)
    elif mode is Mode.LUNG_ADD:
        value = Label.LUNG
        ok &= cur == Label.OUTSIDE
    elif mode is Mode.LUNG_REMOVE:
        value = Label.OUTSIDE
        ok &= cur != Label.OUTSIDE
    else:  # pragma: no cover - Enum is closed
        raise ValueError(mode)
    return ok, np.full(int(ok.sum()), int(value), dtype=np.uint8)


LABEL_TITLES: dict[int, str] = {Label.OUTSIDE: "outside", Label.LUNG: "lung", Label.GGO: "GGO",
                Label.CONSOLIDATION: "consolidation"}


def net_change_ml(edit: Edit, voxel_volume_ml: float, *, reverse: bool = False) -> dict[int, float]:
    """Net change of each label's volume (mL) made by an edit (``reverse``: by undoing it)."""
    old, new = (edit.new, edit.old) if reverse else (edit.old, edit.new)
    gain = np.bincount(new, minlength=4)[:4]
    loss = np.bincount(old, minlength=4)[:4]
    return {k: float(gain[k] - loss[k]) * voxel_volume_ml for k in range(4) if gain[k] != loss[k]}


def describe_edit(edit: Edit, voxel_volume_ml: float, *, reverse: bool = False) -> str:
    """What an edit changed, in mL, for the status bar: ``"1.25 mL changed: GGO +1.25 mL"``.

    Lesion labels are named when they changed; otherwise (lung boundary edits) lung and outside.
    """
    net = net_change_ml(edit, voxel_volume_ml, reverse=reverse)
    lesion = {k: v for k, v in net.items() if k in (Label.GGO, Label.CONSOLIDATION)}
    parts = [f"{LABEL_TITLES.get(k, str(k))} {v:+.2f} mL" for k, v in sorted((lesion or net).items())]
    return f"{len(edit) * voxel_volume_ml:.2f} mL changed" + (f": {', '.join(parts)}" if parts else "")


@dataclass
class EditPlan:
    """A one-shot change worked out but not applied yet, to preview and confirm.

    ``idx`` are the voxels that would change (the editing rule already applied), with ``mode`` and
    ``options`` kept so that :meth:`LabelEditor.apply_plan` checks them again at commit time.
    """

    idx: np.ndarray
    mode: Mode
    options: PaintOptions
    name: str
    #: Why the candidates were cut short (a fill that reached its radius), for the reader.
    note: str = ""

    def __len__(self) -> int:
        return int(self.idx.size)

    def volume_ml(self, voxel_volume_ml: float) -> float:
        return len(self) * float(voxel_volume_ml)


class LabelEditor:
    """Owns ``labels`` (modified in place) and its undo/redo history.

    ``hu`` is only read (for HU-limited tools and to protect padding). Use strokes for mouse
    drags (:meth:`begin_stroke` / :meth:`paint` / :meth:`end_stroke`) or :meth:`apply_edit` for
    one-shot tools; both make exactly one undo step.
    """

    def __init__(
        self,
        hu: np.ndarray,
        labels: np.ndarray,
        *,
        undo_budget_bytes: int = DEFAULT_UNDO_BUDGET_BYTES,
    ) -> None:
        if hu.shape != labels.shape:
            raise ValueError(f"HU {hu.shape} and labels {labels.shape} differ in shape")
        if labels.dtype != np.uint8 or not labels.flags.c_contiguous:
            raise ValueError("labels must be a C-contiguous uint8 array (edited in place)")
        self.hu = hu
        self.labels = labels
        self.shape = labels.shape
        self._flat = labels.reshape(-1)
        self._hu_flat = np.ascontiguousarray(hu).reshape(-1)
        self.index_dtype = np.uint32 if labels.size < 2**32 else np.int64
        self.undo_budget_bytes = int(undo_budget_bytes)
        self._undo: deque[Edit] = deque()
        self._redo: list[Edit] = []
        self._undo_bytes = 0
        self._listeners: list[ChangeListener] = []
        self._step_listeners: list[Callable[[str, Edit], None]] = []
        self._stroke: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._stroke_name = ""
        #: Number of undo steps dropped to stay within the budget (shown to the reader).
        self.dropped_steps = 0

    # --- listeners --------------------------------------------------------------------------
    def subscribe(self, fn: ChangeListener) -> None:
        """``fn(flat_idx int64, old uint8, new uint8)`` after every change of voxels."""
        self._listeners.append(fn)

    def subscribe_steps(self, fn: Callable[[str, Edit], None]) -> None:
        """``fn(kind, edit)`` with kind 'edit', 'undo' or 'redo' once per finished undo step."""
        self._step_listeners.append(fn)

    def _notify(self, idx: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        if not self._listeners or idx.size == 0:
            return
        idx64 = idx.astype(np.int64, copy=False)
        for fn in self._listeners:
            fn(idx64, old, new)

    def _step(self, kind: str, edit: Edit) -> None:
        for fn in self._step_listeners:
            fn(kind, edit)

    # --- low-level change -------------------------------------------------------------------
    def _write(self, idx: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        old = self._flat[idx]
        changed = old != new
        idx, old, new = idx[changed], old[changed], new[changed]
        self._flat[idx] = new
        self._notify(idx, old, new)
        return idx, old, new

    def candidates_to_change(
        self, idx: np.ndarray, mode: Mode, options: PaintOptions
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply the editing rule to candidate flat indices: (indices that change, new values)."""
        idx = np.asarray(idx).astype(self.index_dtype, copy=False)
        ok, new = target_values(mode, self._flat[idx], self._hu_flat[idx], options)
        return idx[ok], new

    # --- strokes ----------------------------------------------------------------------------
    @property
    def in_stroke(self) -> bool:
        return self._stroke is not None

    def begin_stroke(self, name: str = "stroke") -> None:
        if self._stroke is not None:
            self.end_stroke()
        self._stroke = []
        self._stroke_name = name

    def paint(self, idx: np.ndarray, mode: Mode, options: PaintOptions | None = None) -> int:
        """Paint candidate voxels inside the current stroke (one is opened if none is).

        Returns the number of voxels changed; listeners see them at once (live numbers).
        """
        if self._stroke is None:
            self.begin_stroke(mode.value)
        sel, new = self.candidates_to_change(idx, mode, options or PaintOptions())
        if sel.size == 0:
            return 0
        chunk = self._write(sel, new)
        if chunk[0].size:
            self._stroke.append(chunk)  # type: ignore[union-attr]
        return int(chunk[0].size)

    def end_stroke(self) -> Edit | None:
        """Close the stroke as one undo step (``None`` when nothing changed)."""
        chunks, self._stroke = self._stroke, None
        edit = merge_chunks(chunks or [], self._stroke_name)
        if edit is not None:
            self._push(edit)
            self._step("edit", edit)
        return edit

    def apply_edit(self, idx: np.ndarray, new: np.ndarray, name: str = "edit") -> Edit | None:
        """A one-shot change (fill, remove lesion, interpolation) as one undo step."""
        if self._stroke is not None:
            self.end_stroke()
        idx = np.asarray(idx).astype(self.index_dtype, copy=False)
        new = np.broadcast_to(np.asarray(new, dtype=np.uint8), idx.shape)
        order = np.argsort(idx, kind="stable")
        idx, new = idx[order], new[order]
        if idx.size > 1 and np.any(idx[1:] == idx[:-1]):
            last = np.r_[idx[1:] != idx[:-1], True]
            idx, new = idx[last], new[last]
        i, o, n = self._write(idx, np.ascontiguousarray(new))
        if i.size == 0:
            return None
        edit = Edit(i, o, n, name)
        self._push(edit)
        self._step("edit", edit)
        return edit

    def apply_mode(
        self, idx: np.ndarray, mode: Mode, options: PaintOptions | None = None, name: str = ""
    ) -> Edit | None:
        """Run the editing rule on candidates and apply the result as one undo step."""
        sel, new = self.candidates_to_change(idx, mode, options or PaintOptions())
        return self.apply_edit(sel, new, name or mode.value)

    def plan(self, idx: np.ndarray, mode: Mode, options: PaintOptions | None = None,
             name: str = "", note: str = "") -> EditPlan:
        """What :meth:`apply_mode` would change, without changing anything (for a preview)."""
        opts = options or PaintOptions()
        sel, _ = self.candidates_to_change(idx, mode, opts)
        return EditPlan(sel, mode, opts, name or mode.value, note)

    def apply_plan(self, plan: EditPlan) -> Edit | None:
        """Commit a previewed plan as one undo step (the rule is checked again on the voxels)."""
        return self.apply_mode(plan.idx, plan.mode, plan.options, name=plan.name)

    # --- history ----------------------------------------------------------------------------
    def _push(self, edit: Edit) -> None:
        self._undo.append(edit)
        self._undo_bytes += edit.nbytes
        self._redo.clear()
        while self._undo_bytes > self.undo_budget_bytes and len(self._undo) > 1:
            dropped = self._undo.popleft()
            self._undo_bytes -= dropped.nbytes
            self.dropped_steps += 1

    def clear_history(self) -> None:
        """Forget every undo and redo step (after a restore that had to be rolled back)."""
        self._stroke = None
        self._undo.clear()
        self._redo.clear()
        self._undo_bytes = 0

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_depth(self) -> int:
        return len(self._undo)

    @property
    def history_bytes(self) -> int:
        """Memory held by undo and redo steps (the only copies of label data the editor keeps)."""
        return self._undo_bytes + sum(e.nbytes for e in self._redo)

    def undo(self) -> Edit | None:
        if self._stroke is not None:
            self.end_stroke()
        if not self._undo:
            return None
        edit = self._undo.pop()
        self._undo_bytes -= edit.nbytes
        self._flat[edit.idx] = edit.old
        self._notify(edit.idx, edit.new, edit.old)
        self._redo.append(edit)
        self._step("undo", edit)
        return edit

    def redo(self) -> Edit | None:
        if self._stroke is not None:
            self.end_stroke()
        if not self._redo:
            return None
        edit = self._redo.pop()
        self._flat[edit.idx] = edit.new
        self._notify(edit.idx, edit.old, edit.new)
        self._undo.append(edit)
        self._undo_bytes += edit.nbytes
        self._step("redo", edit)
        return edit

    def replay(self, kind: str, edit: Edit) -> None:
        """Re-apply a journaled step (restore after a crash); keeps the undo history intact."""
        if kind == "edit":
            cur = self._flat[edit.idx]
            if not np.array_equal(cur, edit.old):
                raise ValueError("journal does not fit this label map (voxels differ from 'old')")
            self._flat[edit.idx] = edit.new
            self._notify(edit.idx, edit.old, edit.new)
            self._push(edit)
        elif kind == "undo":
            if not self.undo():
                raise ValueError("journal has an undo with nothing to undo")
        elif kind == "redo":
            if not self.redo():
                raise ValueError("journal has a redo with nothing to redo")
        else:
            raise ValueError(f"unknown journal step {kind!r}")
