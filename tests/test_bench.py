"""The benchmark command keeps working (a tiny case; figures are not asserted, only produced)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def test_bench_json_on_a_tiny_case():
    r = subprocess.run(
        [sys.executable, "-m", "readerapp.bench", "--json", "--slices", "24", "--size", "96",
         "--repeat", "1", "--no-gui"],
        capture_output=True, text=True, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert res["case"]["shape_zyx"] == [24, 96, 96]
    assert res["load"]["identical"] is True
    assert res["densitometry"]["numpy_ms"] > 0
    assert res["brush_stroke"]["strokes"] == 200 and res["brush_stroke"]["p95_ms"] > 0
    assert res["segmentation"]["stages_s"]


def test_bench_gui_events_on_a_tiny_case(tmp_path):
    """The workstation part drives the real window through Qt mouse and wheel events."""
    import os

    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    for k in ("LD_LIBRARY_PATH", "LP_NUM_THREADS"):
        if k in os.environ:
            env[k] = os.environ[k]
    r = subprocess.run(
        [sys.executable, "-m", "readerapp.bench", "--json", "--gui-only", "--gui-slices", "24",
         "--size", "96", "--no-segmentation"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    g = json.loads(r.stdout)["gui"]
    assert "skipped" not in g, g
    for k in ("events_brush_move_to_redrawn_slice_p95_ms", "events_wheel_notch_to_redrawn_views_p95_ms",
              "events_20_queued_wheel_notches_ms"):
        assert g[k] > 0, k
    assert g["events_renders_per_hover"] == 0
    assert g["events_renders_for_20_queued_notches"] <= 3
