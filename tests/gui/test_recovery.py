"""Crash recovery of the real window: paint, SIGKILL the program, reopen, restore."""

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

pytestmark = pytest.mark.gui

SRC = str(Path(__file__).resolve().parents[2] / "src")

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from readerapp.gui.headless import configure_headless
    configure_headless(force=True)
    from PySide6 import QtCore, QtWidgets
    from readerapp.editing import Mode
    from readerapp.editing.journal import labels_digest
    from readerapp.gui.main_window import MainWindow
    from readerapp.gui.state import Tool
    from readerapp.phantom import make_chest_phantom

    root = Path(sys.argv[1])
    app = QtWidgets.QApplication([])
    settings = QtCore.QSettings(str(root / "s.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(backend="numpy", journal_root=root / "journal", restore_policy="discard",
                   interactive=False, settings=settings)
    w.resize(900, 700)
    w.show()
    loop = QtCore.QEventLoop()
    w.session_ready.connect(loop.quit)
    w.open_series(make_chest_phantom((40, 96, 96), (3.0, 3.0, 5.0), seed=3).volume)
    loop.exec()
    c = w.controller
    c.set_tool(Tool.BRUSH)
    c.set_mode(Mode.CONSOLIDATION)
    c.set_option(radius_mm=7.0)
    for i, z in enumerate((14, 20, 26)):
        c.begin_paint(0, (z, 40, 30))
        c.move_paint((z, 44, 34))
        c.end_paint()
        app.processEvents()
        print("stroke", i, labels_digest(w.controller.session.labels), flush=True)
    c.begin_paint(0, (30, 40, 60))  # the stroke in progress when the kill comes
    c.move_paint((30, 46, 62))
    print("painting", flush=True)
    time.sleep(120)
    """
)


def _line_queue(proc: subprocess.Popen) -> queue.Queue:
    """The child's stdout lines, read by a thread: waiting never blocks past a deadline."""
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        for ln in proc.stdout:  # type: ignore[union-attr]
            q.put(ln)
        q.put("")

    threading.Thread(target=pump, daemon=True).start()
    return q


def test_kill_9_then_reopen_restores_all_finished_strokes(make_window, open_scan, tmp_path):
    from readerapp.editing.journal import labels_digest
    from readerapp.phantom import make_chest_phantom

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    digests = []
    try:
        lines = _line_queue(proc)
        deadline = time.time() + 90
        line = ""
        while time.time() < deadline:
            try:
                line = lines.get(timeout=max(deadline - time.time(), 0.1))
            except queue.Empty:
                break
            if not line or line.startswith("painting"):
                break
            if line.startswith("stroke"):
                digests.append(line.split()[2])
        assert len(digests) == 3 and line.startswith("painting"), (digests, line)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    w = make_window(journal_root=tmp_path / "journal", restore_policy="restore")
    s = open_scan(w, make_chest_phantom((40, 96, 96), (3.0, 3.0, 5.0), seed=3).volume)
    assert w.restored_edits == 3
    assert labels_digest(s.labels) == digests[-1]  # only the stroke in progress is lost
    assert s.source == "corrected" and s.editor.undo_depth == 3
    # Numbers after restoring equal a scratch computation on the restored labels.
    from readerapp.densitometry import compute_table

    assert s.acc.table == compute_table(s.volume.hu, s.labels, backend="numpy")
    w.actions_["undo"].trigger()
    assert labels_digest(s.labels) == digests[1]


def test_discard_policy_starts_fresh(make_window, open_scan, tmp_path):
    from readerapp.phantom import make_chest_phantom

    vol = make_chest_phantom((40, 96, 96), (3.0, 3.0, 5.0), seed=4).volume
    w = make_window(journal_root=tmp_path / "j")
    s = open_scan(w, vol)
    base = s.labels.copy()
    from readerapp.editing import Mode, find_recoverable

    assert s.editor.apply_mode(np.arange(96 * 96 * 20, 96 * 96 * 20 + 500), Mode.LUNG_ADD)
    w.close()
    assert find_recoverable(s.series_uid, vol.shape, tmp_path / "j") is not None  # to discard
    w2 = make_window(journal_root=tmp_path / "j", restore_policy="discard")
    s2 = open_scan(w2, vol)
    assert w2.restored_edits == 0 and np.array_equal(s2.labels, base)
