"""Label editing without Qt: sparse undoable edits, the tools, and the crash journal.

The GUI adapts this package; tests and batch scripts drive it directly. Public API::

    editor = LabelEditor(volume.hu, labels)          # labels edited in place
    editor.subscribe(accumulator.apply)              # live densitometry from changed voxels
    stroke = brush_tool(editor, Mode.GGO, 5.0, volume.spacing_zyx, plane_axis=0)
    next(stroke); stroke.send((z, y, x)); stroke.send(None)   # one undo step
    editor.undo(); editor.redo()
"""

from ._editor import (
    DEFAULT_UNDO_BUDGET_BYTES,
    Edit,
    EditPlan,
    LabelEditor,
    Mode,
    PaintOptions,
    describe_edit,
    merge_chunks,
    net_change_ml,
    target_values,
)
from .journal import Journal, JournalError, Recoverable, find_recoverable, journal_folder
from .tools import (
    ball_offsets,
    brush_indices,
    brush_tool,
    connected_lesion,
    connected_region,
    interpolate_between,
    interpolate_masks,
    interpolate_object,
    key_object,
    slice_coords,
    slice_mask,
)

__all__ = [
    "DEFAULT_UNDO_BUDGET_BYTES",
    "Edit",
    "EditPlan",
    "Journal",
    "JournalError",
    "LabelEditor",
    "Mode",
    "PaintOptions",
    "Recoverable",
    "ball_offsets",
    "brush_indices",
    "brush_tool",
    "connected_lesion",
    "connected_region",
    "describe_edit",
    "find_recoverable",
    "interpolate_between",
    "interpolate_masks",
    "interpolate_object",
    "key_object",
    "journal_folder",
    "merge_chunks",
    "net_change_ml",
    "slice_coords",
    "slice_mask",
    "target_values",
]
