"""``readerapp view SERIES --screenshot OUT.png`` end to end, in a child process, no display."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_view_screenshot_from_dicom_folder(tmp_path):
    from PySide6 import QtGui

    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    vol = make_chest_phantom((40, 96, 96), (3.0, 3.0, 5.0), seed=5).volume
    write_synthetic_series(vol, tmp_path / "series")
    out = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_SCALE_FACTOR")}
    env.update(PYTHONPATH=SRC, READERAPP_DATA_DIR=str(tmp_path / "data"))
    r = subprocess.run(
        [sys.executable, "-m", "readerapp", "view", str(tmp_path / "series"), "--screenshot",
         str(out), "--size", "1003x651", "--slice", "20"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    # An odd size splits the views unevenly: OSMesa buffers must follow every resize (this
    # once corrupted the heap and aborted at exit).
    assert r.returncode == 0, r.stderr[-2000:]
    img = QtGui.QImage(str(out))
    assert (img.width(), img.height()) == (1003, 651)
    assert not (tmp_path / "data").exists()  # a screenshot never touches the reader's journal
    # A bad folder: a clear error, exit status 2, no traceback.
    (tmp_path / "empty").mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "readerapp", "view", str(tmp_path / "empty"), "--screenshot",
         str(tmp_path / "x.png")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "empty" in r.stderr


@pytest.mark.parametrize("size", ["0x600", "800x-1", "800", "axb", "1x2x3"])
def test_bad_size_is_a_clear_error(size):
    import argparse

    from readerapp.commands.view import run_view
    from readerapp.errors import ReaderAppError

    args = argparse.Namespace(size=size, labels=None, series=[])
    with pytest.raises(ReaderAppError, match="--size"):
        run_view(args)
