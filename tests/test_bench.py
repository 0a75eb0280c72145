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
