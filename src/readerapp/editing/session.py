"""A reading session without Qt: one scan, its label map under edit, live endpoints, the journal.

The window is a thin view of this object; tests and benchmarks drive it directly. Loading and
auto-segmentation (:func:`prepare`) run in a worker thread in the GUI and report progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from ..endpoints import SegmentationSource
from ..errors import ReaderAppError, SeriesError
from ..forms import ReadForm
from ..labels import PADDING_BELOW_HU, Label
from ..progress import ProgressFn, no_progress, scaled
from ..volume import CTVolume
from ._editor import Edit, LabelEditor
from .journal import Journal, JournalError, Recoverable, find_recoverable

log = logging.getLogger(__name__)


class LabelOrigin(StrEnum):
    """Where a session's starting label map came from."""

    AUTO = "auto"  #: the segmentation's proposal
    FILE = "file"  #: a label map the reader opened (a saved read, a file)


@dataclass
class Prepared:
    """What the background worker hands to the window: a volume and its starting label map."""

    volume: CTVolume
    labels: np.ndarray
    origin: LabelOrigin
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: The form of a saved read opened with its labels (to continue or review that read).
    form: ReadForm | None = None
    #: Rulers and ROIs of a saved read opened with its labels.
    measurements: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.origin = LabelOrigin(self.origin)  # a plain "auto"/"file" is checked here


def _measurements_beside(labels_path: Path) -> list[Any]:
    """The rulers and ROIs of the read whose label file this is (a study read is opened by its
    label file), or none: only when the folder's read.json names this file as its labels."""
    import json

    from ..measurements import FILE_NAME, MeasurementError, from_json_obj

    folder = labels_path.parent
    try:
        meta = json.loads((folder / "read.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("labels_file") != labels_path.name:
            return []
        if not (folder / FILE_NAME).is_file():
            return []
        return from_json_obj(json.loads((folder / FILE_NAME).read_text(encoding="utf-8")))
    except (OSError, ValueError, MeasurementError) as exc:
        log.warning("measurements beside %s not read: %s", labels_path.name, exc)
        return []


def _fallback_lungs(volume: CTVolume) -> np.ndarray:
    """Lung by threshold and border-connected air removal: only until the segmenter is installed."""
    from scipy import ndimage as ndi

    air = (volume.hu < -400) & ~volume.padding_mask()
    lab, n = ndi.label(air)
    border = np.unique(np.concatenate([lab[:, 0].ravel(), lab[:, -1].ravel(), lab[:, :, 0].ravel(),
                                       lab[:, :, -1].ravel()]))
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    sizes[border] = 0
    sizes[0] = 0
    keep = np.argsort(sizes)[::-1][:2]
    keep = keep[sizes[keep] > 0]
    return np.isin(lab, keep).astype(np.uint8) * np.uint8(Label.LUNG)


def prepare(
    inputs: list[str | Path] | CTVolume | Prepared,
    *,
    labels_path: str | Path | None = None,
    backend: str = "auto",
    progress: ProgressFn = no_progress,
    on_volume: Callable[[CTVolume], None] | None = None,
) -> Prepared:
    """Load a series (or take a volume) and get its starting label map: a file or the proposal.

    Raises :class:`~readerapp.errors.ReaderAppError` subclasses for bad input and
    :class:`~readerapp.progress.Cancelled` when the progress callback cancels. ``on_volume`` gets
    the CT as soon as it is loaded, so a window can show it while segmentation runs.
    """
    if isinstance(inputs, Prepared):  # already prepared (benchmarks, the study workflow)
        if on_volume is not None:
            on_volume(inputs.volume)
        return inputs
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if isinstance(inputs, CTVolume):
        volume = inputs
    else:
        from ..io.dicom import load_series

        vols = load_series([str(p) for p in inputs], progress=scaled(progress, 0.0, 0.3))
        if not vols:
            raise SeriesError(f"no CT series found in {', '.join(map(str, inputs))}")
        if len(vols) > 1:
            log.warning("%d series found; opening the largest", len(vols))
        volume = max(vols, key=lambda v: v.hu.size)
    timings["load_s"] = time.perf_counter() - t0
    if on_volume is not None:
        on_volume(volume)
    progress(0.3, "CT loaded")
    warnings = list(volume.warnings)
    if labels_path is not None:
        from ..io.labelmap import read_labelmap

        labels_path = Path(labels_path)
        form = None
        measurements: list[Any] = []
        if labels_path.is_dir():  # a saved read folder: its checked labels, form, measurements
            from ..readfile import load_read

            read = load_read(labels_path, volume)
            labels, form, measurements = read.labels, read.form, read.measurements
        else:
            labels = read_labelmap(labels_path, volume)
            measurements = _measurements_beside(labels_path)
        progress(1.0, "label map loaded")
        # The file's name or folder can name the patient: the provenance keeps only its kind.
        kind = "read folder" if labels_path.is_dir() else "label map file"
        return Prepared(volume, np.ascontiguousarray(labels, dtype=np.uint8), LabelOrigin.FILE,
                        {"method": "loaded", "labels_from": kind}, warnings, timings, form,
                        measurements)
    t1 = time.perf_counter()
    try:
        from ..segmentation import get_segmenter
    except ImportError:
        get_segmenter = None  # type: ignore[assignment]
    if get_segmenter is None:
        labels = _fallback_lungs(volume)
        warnings.append("automatic lesion segmentation is not installed: lungs only, by threshold")
        provenance: dict[str, Any] = {"method": "fallback-threshold"}
    else:
        result = get_segmenter("classical").propose(
            volume, backend=backend, progress=scaled(progress, 0.3, 1.0)
        )
        labels = result.labels
        provenance = dict(getattr(result, "provenance", {}) or {})
        warnings += list(getattr(result, "warnings", []) or [])
    timings["segmentation_s"] = time.perf_counter() - t1
    progress(1.0, "segmentation done")
    return Prepared(volume, np.ascontiguousarray(labels, dtype=np.uint8), LabelOrigin.AUTO, provenance,
                    warnings, timings)


class ReadingSession:
    """One scan being read: editor, live densitometry, starting values, journal, save."""

    def __init__(
        self,
        prepared: Prepared,
        *,
        backend: str = "auto",
        journal_root: Path | None = None,
        use_journal: bool = True,
    ) -> None:
        from ..densitometry import DensityAccumulator

        self.prepared = prepared
        self.volume = prepared.volume
        self.labels = prepared.labels
        # Padding voxels are never lung (PROTOCOL.md); the editor also never paints them.
        for z0 in range(0, self.labels.shape[0], 16):  # in slabs: no full-size temporaries
            pad = self.volume.hu[z0 : z0 + 16] < PADDING_BELOW_HU
            if pad.any():
                self.labels[z0 : z0 + 16][pad] = Label.OUTSIDE
        self.editor = LabelEditor(self.volume.hu, self.labels)
        self.acc = DensityAccumulator(
            self.volume.hu, self.labels, backend=backend, voxel_volume_ml=self.volume.voxel_volume_ml
        )
        self.editor.subscribe(self.acc.apply)
        self.initial_endpoints = self.acc.endpoints()
        self.journal_root = journal_root
        self.use_journal = use_journal
        self.journal: Journal | None = None
        #: Why journaling stopped mid-session (a full or failing disk), for the window to report.
        self.journal_error: str | None = None
        self.steps_since_save = 0
        self.edits_since_start = 0
        self.form = ReadForm.blank(with_fibrosis=False)
        #: The reader's rulers and ROIs (readerapp.measurements), saved with the read.
        self.measurements: list[Any] = list(prepared.measurements)
        self._measurements_saved = self._measurements_key()
        self.editor.subscribe_steps(self._on_step)

    # --- journal ----------------------------------------------------------------------------
    @property
    def series_uid(self) -> str:
        return self.volume.series_uid or "no-uid"

    def recoverable(self) -> Recoverable | None:
        """Unsaved edits a previous session on this scan left behind (ask before restoring)."""
        if not self.use_journal:
            return None
        return find_recoverable(self.series_uid, self.labels.shape, self.journal_root)

    def start_journal(self, restore: Recoverable | None = None) -> int:
        """Start journaling; with ``restore``, first replay its edits. Returns edits restored."""
        if not self.use_journal:
            return 0
        n = 0
        if restore is not None:
            # A journal that fails part-way must not leave a half-restored label map on screen
            # (with stale numbers) that the reader could then save as a read: roll back.
            before = self.labels.copy()
            counts = (self.edits_since_start, self.steps_since_save)
            try:
                n = restore.restore_into(self.editor)
            except JournalError:
                self.labels[...] = before
                self.editor.clear_history()
                self.edits_since_start, self.steps_since_save = counts
                self.acc.reset(self.labels)
                raise
            self.acc.reset(self.labels)
            self.journal = Journal.resume(restore, self.labels)
            self.steps_since_save = max(n, 1)
            self.edits_since_start += n
        else:
            try:
                self.journal = Journal.start(self.series_uid, self.labels, self.journal_root)
            except JournalError as exc:
                log.warning("%s", exc)
                raise
        self.editor.subscribe_steps(self._journal_step)
        return n

    def _journal_step(self, kind: str, edit: Edit | None = None) -> None:
        """Append a finished step. A write that fails (a full disk) is reported once through
        :attr:`journal_error`; raised from here it escaped the mouse handler half-way through
        the step's listeners (views and panels not updated, the reader not told). The journal
        then checkpoints on a later step and goes on once the disk has room again."""
        if self.journal is None:
            return
        try:
            self.journal.append(kind, edit)
        except JournalError as exc:
            log.warning("%s", exc)
            self.journal_error = str(exc)

    def _on_step(self, kind: str, edit: Edit) -> None:
        self.edits_since_start += 1
        self.steps_since_save += 1

    @property
    def modified(self) -> bool:
        """Edited (or undone) since the last save."""
        return self.steps_since_save > 0

    # --- values -----------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self.acc.backend

    def endpoints(self):  # type: ignore[no-untyped-def]
        return self.acc.endpoints()

    def differences(self) -> dict[str, float]:
        """Current minus starting (automatic) values, per scalar endpoint."""
        return self.acc.endpoints().difference(self.initial_endpoints)

    @property
    def edited(self) -> bool:
        """The labels differ from how they started by at least one edit not undone (edits the
        budget dropped from the undo history count as kept)."""
        return self.editor.undo_depth > 0 or self.editor.dropped_steps > 0

    @property
    def source(self) -> SegmentationSource:
        """Where the labels came from: AUTO (the proposal, unedited), LOADED (a file or a saved
        read, unedited) or CORRECTED (edited by the reader in this session)."""
        if self.edited:
            return SegmentationSource.CORRECTED
        if self.prepared.origin == LabelOrigin.FILE:
            return SegmentationSource.LOADED
        return SegmentationSource.AUTO

    def hu_at(self, zyx: tuple[int, int, int]) -> int | None:
        z, y, x = zyx
        if 0 <= z < self.labels.shape[0] and 0 <= y < self.labels.shape[1] and 0 <= x < self.labels.shape[2]:
            return int(self.volume.hu[z, y, x])
        return None

    # --- saving -----------------------------------------------------------------------------
    def save(self, folder: str | Path, form: ReadForm, *, require_fibrosis: bool = False) -> Path:
        """Save the read (labels, form, endpoints, provenance); refuses an incomplete form."""
        from ..readfile import save_read

        missing = form.missing(require_fibrosis)
        if missing:
            shown = ", ".join(missing[:6]) + (" ..." if len(missing) > 6 else "")
            raise ReaderAppError(f"the read is not complete: {len(missing)} answer(s) missing ({shown})")
        endpoints: Any
        try:
            from ..analysis import measure

            endpoints = measure(
                self.volume, self.labels, backend=self.backend, source=self.source,
                provenance=self.prepared.provenance, warnings=self.prepared.warnings,
            )
        except ImportError:
            endpoints = self.endpoints().to_dict()
        folder = save_read(folder, volume=self.volume, labels=self.labels, form=form,
                           endpoints=endpoints, source=self.source, measurements=self.measurements)
        self.form = form
        self.mark_saved()
        return folder

    def _measurements_key(self) -> list[Any]:
        return [m.to_dict() for m in self.measurements]

    @property
    def unsaved_measurements(self) -> bool:
        """Rulers or ROIs added or deleted since the last save (they are not journaled: only a
        saved read keeps them)."""
        return self._measurements_key() != self._measurements_saved

    def mark_saved(self) -> None:
        """The current labels are stored elsewhere (a read folder, the study database): nothing
        is left to restore after a crash, and closing deletes the journal."""
        self.steps_since_save = 0
        self._measurements_saved = self._measurements_key()
        self._journal_step("saved")

    def close(self) -> None:
        """Stop journaling; a journal with nothing unsaved is deleted (nothing to restore)."""
        if self.journal is not None:
            if self.modified:
                self.journal.close()
            else:
                self.journal.discard()
            self.journal = None
