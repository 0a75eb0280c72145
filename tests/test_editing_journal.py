"""The edit journal: records survive a SIGKILL; at most the stroke in progress is lost."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from readerapp.editing import (
    Journal,
    JournalError,
    LabelEditor,
    Mode,
    brush_indices,
    find_recoverable,
    journal_folder,
)
from readerapp.labels import Label

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _vol():
    hu = np.full((12, 30, 30), -850, np.int16)
    labels = np.ones(hu.shape, np.uint8)
    return hu, labels


def test_journal_round_trip_with_undo_and_damaged_tail(tmp_path):
    hu, labels = _vol()
    base = labels.copy()
    ed = LabelEditor(hu, labels)
    j = Journal.start("1.2.3", labels, root=tmp_path)
    j.attach(ed)
    for z in range(5):
        ed.apply_mode(brush_indices((z, 15, 15), 3, labels.shape, (1, 1, 1), 0), Mode.GGO)
    ed.undo()
    ed.undo()
    ed.redo()
    j.close()
    expected = labels.copy()
    assert "1.2.3" not in str(j.folder)  # no identity in file names
    # A half-written record at the end (the kill hit mid-write) is ignored.
    with open(j.folder / "edits.journal", "ab") as f:
        f.write(b"RJ01\x00\x05")
    rec = find_recoverable("1.2.3", labels.shape, root=tmp_path)
    assert rec is not None and rec.n_edits == 5 and rec.damaged_tail
    ed2 = LabelEditor(hu, base.copy())
    assert rec.restore_into(ed2) == 5
    assert np.array_equal(ed2.labels, expected)
    assert ed2.undo_depth == 4 and ed2.can_redo  # the history comes back too
    # Resume appending after the damaged tail was cut; then a save leaves nothing to restore.
    j2 = Journal.resume(rec)
    j2.attach(ed2)
    ed2.redo()
    j2.mark_saved()
    j2.close()
    assert find_recoverable("1.2.3", labels.shape, root=tmp_path) is None
    assert find_recoverable("other", labels.shape, root=tmp_path) is None


DRIVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from readerapp.editing import Journal, LabelEditor, Mode, brush_tool
    root = Path(sys.argv[1])
    hu = np.full((12, 30, 30), -850, np.int16)
    labels = np.ones(hu.shape, np.uint8)
    ed = LabelEditor(hu, labels)
    Journal.start("9.8.7", labels, root=root).attach(ed)
    for z in range(4):
        s = brush_tool(ed, Mode.CONSOLIDATION, 2.0, (1.0, 1.0, 1.0), 0)
        next(s); s.send((z, 10, 10)); s.send((z, 10, 20))
        try:
            s.send(None)
        except StopIteration:
            pass
        print("stroke", z, flush=True)
    s = brush_tool(ed, Mode.CONSOLIDATION, 2.0, (1.0, 1.0, 1.0), 0)  # in progress at the kill
    next(s); s.send((8, 10, 10))
    print("painting", flush=True)
    time.sleep(60)
    """
)


def test_sigkill_then_restore(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        lines = []
        q: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [q.put(ln) for ln in proc.stdout] and q.put(""),
                         daemon=True).start()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                line = q.get(timeout=max(deadline - time.time(), 0.1))
            except queue.Empty:
                break
            lines.append(line.strip())
            if line.startswith("painting") or not line:
                break
        assert lines[-1] == "painting", lines
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    rec = find_recoverable("9.8.7", (12, 30, 30), root=tmp_path)
    assert rec is not None and rec.n_edits == 4
    hu, labels = _vol()
    ed = LabelEditor(hu, labels)
    rec.restore_into(ed)
    # Four finished strokes of a 2 mm disk dragged from x=10 to x=20 on slices 0..3.
    for z in range(4):
        assert np.all(labels[z, 10, 8:23] == Label.CONSOLIDATION)
        assert (labels[z] == Label.CONSOLIDATION).sum() == 15 + 2 * 13 + 2 * 11  # rows y=10, 9/11, 8/12
    assert (labels[8] == Label.CONSOLIDATION).sum() == 0  # the stroke in progress is lost
    assert journal_folder("9.8.7", (12, 30, 30), tmp_path) == rec.folder


def test_journal_refuses_wrong_scan(tmp_path):
    hu, labels = _vol()
    ed = LabelEditor(hu, labels)
    Journal.start("1.1", labels, root=tmp_path).attach(ed)
    ed.apply_mode(np.arange(10), Mode.GGO)
    rec = find_recoverable("1.1", labels.shape, root=tmp_path)
    assert rec is not None
    other = LabelEditor(hu, np.zeros_like(labels))
    rec.meta["shape"] = [1, 2, 3]
    with pytest.raises(JournalError, match="damaged|scan"):
        rec.restore_into(other)


def test_damaged_bookkeeping_never_stops_a_scan_from_opening(tmp_path):
    """A meta file from elsewhere or a torn base gives no restore offer or a JournalError,
    never a KeyError or EOFError that would abort opening the scan."""
    hu, labels = _vol()
    ed = LabelEditor(hu, labels)
    j = Journal.start("4.4", labels, root=tmp_path)
    j.attach(ed)
    ed.apply_mode(np.arange(10), Mode.GGO)
    j.close()
    meta_path = j.folder / "meta.json"
    good = meta_path.read_text()
    for bad in ("[1, 2]", '{"shape": [12, 30, 30]}', '{"shape": 5, "index_dtype": "<u4"}',
                good.replace("<u4", "<f8")):
        meta_path.write_text(bad)
        assert find_recoverable("4.4", labels.shape, root=tmp_path) is None, bad
    meta_path.write_text(good)
    rec = find_recoverable("4.4", labels.shape, root=tmp_path)
    assert rec is not None and rec.n_edits == 1
    base = j.folder / "base.labels.gz"
    base.write_bytes(base.read_bytes()[:20])  # truncated gzip
    with pytest.raises(JournalError, match="damaged"):
        rec.restore_into(LabelEditor(hu, np.ones_like(labels)))
