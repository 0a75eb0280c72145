"""The Qt-free reading session: live values, source, save rules, journal lifecycle."""

from __future__ import annotations

import numpy as np
import pytest

from readerapp.editing import Mode, brush_indices
from readerapp.editing.session import Prepared, ReadingSession, prepare
from readerapp.errors import ReaderAppError
from readerapp.forms import LOBES, ReadForm
from readerapp.labels import Label
from readerapp.readfile import load_read


def test_session_edit_save_close(small_phantom, tmp_path):
    vol = small_phantom.volume
    s = ReadingSession(Prepared(vol, small_phantom.truth.copy(), "auto"), backend="numpy",
                       journal_root=tmp_path / "j")
    assert s.recoverable() is None and s.start_journal() == 0
    assert s.source == "auto" and not s.modified
    z = vol.shape[0] // 2
    lung = np.argwhere(s.labels[z] == Label.LUNG)
    y, x = lung[len(lung) // 2]
    e = s.editor.apply_mode(brush_indices((z, y, x), 6.0, vol.shape, vol.spacing_zyx, 0), Mode.GGO)
    assert s.source == "corrected" and s.modified
    assert s.differences()["ggo_volume_ml"] == pytest.approx(len(e) * vol.voxel_volume_ml)
    with pytest.raises(ReaderAppError, match="5 answer"):
        s.save(tmp_path / "read", ReadForm.blank(False))
    form = ReadForm(severity=dict.fromkeys(LOBES, 1))
    out = s.save(tmp_path / "read", form)
    read = load_read(out, vol)
    assert read.meta["segmentation_source"] == "corrected" and np.array_equal(read.labels, s.labels)
    assert read.endpoints["ggo_volume_ml"] == pytest.approx(s.endpoints().ggo_volume_ml)
    assert not s.modified
    folder = s.journal.folder
    s.close()
    assert not folder.exists()  # nothing unsaved: no journal left behind


def test_unsaved_session_leaves_a_journal_to_restore(small_phantom, tmp_path):
    vol = small_phantom.volume
    s = ReadingSession(Prepared(vol, small_phantom.truth.copy(), "auto"), backend="numpy",
                       journal_root=tmp_path)
    s.start_journal()
    s.editor.apply_mode(np.arange(1000, 1500), Mode.LUNG_ADD)
    expected = s.labels.copy()
    s.close()
    s2 = ReadingSession(Prepared(vol, small_phantom.truth.copy(), "auto"), backend="numpy",
                        journal_root=tmp_path)
    rec = s2.recoverable()
    assert rec is not None and s2.start_journal(rec) == 1
    assert np.array_equal(s2.labels, expected) and s2.modified and s2.source == "corrected"


def test_prepare_from_label_file_and_read_folder(small_phantom, tmp_path):
    from readerapp.io.labelmap import write_labelmap

    vol = small_phantom.volume
    path = tmp_path / "labels.nii.gz"
    write_labelmap(path, small_phantom.truth, vol)
    seen = []
    p = prepare(vol, labels_path=path, on_volume=seen.append)
    assert p.origin == "file" and np.array_equal(p.labels, small_phantom.truth) and seen == [vol]
    assert prepare(p) is p


def test_failed_restore_rolls_back_to_the_proposal(small_phantom, tmp_path):
    from readerapp.editing import JournalError

    vol = small_phantom.volume
    s = ReadingSession(Prepared(vol, small_phantom.truth.copy(), "auto"), backend="numpy",
                       journal_root=tmp_path)
    s.start_journal()
    s.editor.apply_mode(np.arange(1000, 1500), Mode.LUNG_ADD)
    s.editor.apply_mode(np.arange(2000, 2500), Mode.LUNG_ADD)
    s.close()
    rec = ReadingSession(Prepared(vol, small_phantom.truth.copy(), "auto"), backend="numpy",
                         journal_root=tmp_path).recoverable()
    assert rec is not None and rec.n_edits == 2
    bad = rec.steps[1][1]
    assert bad is not None
    bad.old[:] = 99  # the second edit no longer fits its base: replay fails part-way
    s2 = ReadingSession(Prepared(vol, small_phantom.truth.copy(), "auto"), backend="numpy",
                        journal_root=tmp_path)
    start = s2.labels.copy()
    with pytest.raises(JournalError, match="does not fit"):
        s2.start_journal(rec)
    assert np.array_equal(s2.labels, start)  # not the first edit alone
    assert not s2.editor.can_undo and s2.source == "auto" and not s2.modified
    assert s2.endpoints().to_dict() == s2.initial_endpoints.to_dict()


class _FullDisk:
    """A journal file handle on a disk that has just filled up."""

    def write(self, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    def close(self) -> None:
        pass


def test_journal_write_failure_is_reported_not_raised(small_phantom, tmp_path):
    vol = small_phantom.volume
    s = ReadingSession(Prepared(vol, small_phantom.truth.copy(), "auto"), backend="numpy",
                       journal_root=tmp_path)
    s.start_journal()
    later: list[str] = []
    s.editor.subscribe_steps(lambda kind, edit: later.append(kind))  # like the window's listener
    assert s.journal is not None
    s.journal._fh = _FullDisk()
    e = s.editor.apply_mode(np.arange(1000, 1500), Mode.LUNG_ADD)  # must not raise
    assert e is not None and later == ["edit"] and s.modified
    assert s.journal_error is not None and "No space left" in s.journal_error
    s.editor.undo()  # journaling stopped: no further attempts, no further errors
    assert later == ["edit", "undo"]
    s.mark_saved()
    assert not s.modified


class _FullOnce:
    """A journal file on a disk that is full for one write (half a record gets through), then
    has room again."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real = real
        self.failed = 0

    def write(self, data) -> int:  # type: ignore[no-untyped-def]
        if not self.failed:
            self.failed += 1
            self.real.write(bytes(data)[: len(data) // 2])  # a torn record on disk
            raise OSError(28, "No space left on device")
        return self.real.write(data)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.real, name)


def test_journal_recovers_from_a_full_disk(small_phantom, tmp_path):
    from readerapp.editing.journal import find_recoverable

    vol = small_phantom.volume
    s = ReadingSession(Prepared(vol, small_phantom.truth.copy(), "auto"), backend="numpy",
                       journal_root=tmp_path)
    s.start_journal()
    assert s.journal is not None
    s.editor.apply_mode(np.arange(1000, 1200), Mode.LUNG_ADD)
    s.journal._fh = _FullOnce(s.journal._fh)
    s.editor.apply_mode(np.arange(2000, 2500), Mode.LUNG_ADD)  # the disk is full: told once
    assert s.journal_error is not None and "No space left" in s.journal_error
    s.journal_error = None
    s.editor.apply_mode(np.arange(3000, 3300), Mode.LUNG_ADD)  # checkpoint: journaling resumes
    s.editor.apply_mode(np.arange(4000, 4100), Mode.LUNG_ADD)
    s.editor.undo()
    assert s.journal_error is None  # not told again
    assert not s.journal.broken and s.journal.records_written >= 2
    want = s.labels.copy()
    # the program is killed now: the journal brings back exactly what was on screen
    rec = find_recoverable(s.series_uid, s.labels.shape, tmp_path)
    assert rec is not None and not rec.damaged_tail
    s2 = ReadingSession(Prepared(vol, small_phantom.truth.copy(), "auto"), backend="numpy",
                        journal_root=tmp_path)
    s2.start_journal(restore=rec)
    np.testing.assert_array_equal(s2.labels, want)
