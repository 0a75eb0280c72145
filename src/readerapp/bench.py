"""``python -m readerapp.bench``: how fast the core is, on a synthetic 512x512x600 chest.

Prints each figure with its target and the ratio to it; ``--json`` prints one JSON object instead.
Timings are wall-clock medians on this machine; run it on an idle machine for figures to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _peak_rss_mb() -> float:
    """This process's peak resident memory since start or since the last reset."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak_rss() -> bool:
    """Start peak-memory accounting afresh (Linux: write 5 to clear_refs); False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _timeit(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_densitometry(vol: Any, labels: np.ndarray, repeat: int) -> dict[str, Any]:
    from .backend import cupy_available
    from .densitometry import compute_table
    from .densitometry._numpy import _table_chunked, warm_up

    warm_up()
    out: dict[str, Any] = {}
    times = _timeit(lambda: compute_table(vol.hu, labels, backend="numpy"), repeat)
    nbytes = vol.hu.nbytes + labels.nbytes
    out["numpy_ms"] = 1000 * statistics.median(times)
    out["numpy_gb_per_s"] = nbytes / statistics.median(times) / 1e9
    t_plain = _timeit(lambda: _table_chunked(vol.hu.ravel(), labels.ravel(), 1 << 22), 1)
    out["numpy_without_numba_ms"] = 1000 * t_plain[0]
    if cupy_available():
        import cupy

        hu_d, lab_d = cupy.asarray(vol.hu), cupy.asarray(labels)
        compute_table(hu_d, lab_d, backend="cupy")

        def run() -> None:
            compute_table(hu_d, lab_d, backend="cupy")
            cupy.cuda.Device().synchronize()

        t = _timeit(run, repeat)
        out["cupy_ms"] = 1000 * statistics.median(t)
    return out


def bench_strokes(vol: Any, labels: np.ndarray, n: int, radius_vox: int, backend: str) -> dict[str, Any]:
    """Sphere brush strokes painting ground glass at random lung positions, applied live."""
    from .densitometry import DensityAccumulator

    acc = DensityAccumulator(vol.hu, labels, backend=backend, voxel_volume_ml=vol.voxel_volume_ml)
    rng = np.random.default_rng(0)
    lung = np.flatnonzero(labels.reshape(-1)[:: 97]) * 97
    r = radius_vox
    zz, yy, xx = np.mgrid[-r : r + 1, -r : r + 1, -r : r + 1]
    ball = (zz**2 + yy**2 + xx**2) <= r * r
    offs = np.stack([zz[ball], yy[ball], xx[ball]], 1)
    nz, ny, nx = labels.shape
    flat = labels.reshape(-1)
    times = []
    sizes = []
    for _ in range(n):
        c = np.unravel_index(int(rng.choice(lung)), labels.shape)
        pts = offs + np.asarray(c)
        pts = pts[(pts >= 0).all(1) & (pts[:, 0] < nz) & (pts[:, 1] < ny) & (pts[:, 2] < nx)]
        t0 = time.perf_counter()
        idx = (pts[:, 0] * ny + pts[:, 1]) * nx + pts[:, 2]
        old = flat[idx]
        change = old != 2
        idx, old = idx[change], old[change]
        new = np.full(idx.size, 2, np.uint8)
        flat[idx] = new
        acc.apply(idx, old, new)
        acc.endpoints()
        times.append(time.perf_counter() - t0)
        sizes.append(int(idx.size))
    return {
        "backend": acc.backend,
        "strokes": n,
        "voxels_per_stroke_median": int(np.median(sizes)),
        "median_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * _pct(times, 95),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m readerapp.bench", description=__doc__)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--slices", type=int, default=600, help="slices of the synthetic case (default 600)")
    ap.add_argument("--size", type=int, default=512, help="rows and columns (default 512)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-gui", action="store_true", help="skip the workstation benchmarks")
    ap.add_argument("--no-segmentation", action="store_true")
    ap.add_argument("--gui-only", action="store_true",
                    help="only the workstation benchmarks (real window, real mouse and wheel events)")
    ap.add_argument("--gui-slices", type=int, default=600,
                    help="slices of the workstation case (default 600; rows and columns: --size)")
    args = ap.parse_args(argv)

    from . import __version__
    from .backend import cupy_status
    from .phantom import make_chest_phantom

    res: dict[str, Any] = {"readerapp_version": __version__, "cpu_count": os.cpu_count(),
                           "cupy": cupy_status()[1]}
    if not args.no_gui:
        # First, while this process is small: a child's peak-memory figure (ru_maxrss) starts
        # from its parent's peak at the fork.
        gui_shape = (args.gui_slices, args.size, args.size)
        res["gui"] = _gui_bench(gui_shape, with_segmentation=not args.no_segmentation)
    if args.gui_only:
        res["gui_shape_zyx"] = [args.gui_slices, args.size, args.size]
        if args.json:
            print(json.dumps(res, indent=2))
        else:
            print(f"ReaderApp {__version__} workstation benchmark, {os.cpu_count()} CPUs, "
                  f"case {res['gui_shape_zyx']} (z, y, x)")
            _print_gui(res["gui"])
        return 0
    shape = (args.slices, args.size, args.size)
    spacing = (0.7, 0.7, 300.0 / args.slices)
    res["case"] = {"shape_zyx": list(shape), "spacing_xyz_mm": list(spacing)}
    res["case_mb"] = float(np.prod(shape)) * 3 / 2**20
    t0 = time.perf_counter()
    ph = make_chest_phantom(shape, spacing, seed=1)
    res["phantom_build_s"] = time.perf_counter() - t0
    vol = ph.volume
    import gc

    gc.collect()
    res["peak_rss_mb_building_phantom"] = _peak_rss_mb()
    res["peak_rss_reset"] = _reset_peak_rss()

    try:
        from .io.dicom import load_series
        from .io.dicom_write import write_synthetic_series
    except ImportError as exc:
        res["load"] = {"skipped": f"loader unavailable: {exc}"}
    else:
        with tempfile.TemporaryDirectory(prefix="readerapp-bench-") as tmp:
            write_synthetic_series(vol, tmp)
            _reset_peak_rss()
            t = _timeit(lambda: load_series([tmp]), 2)
            loaded = load_series([tmp])[0]
            res["load"] = {"seconds_min": min(t), "slices": loaded.shape[0],
                           "identical": bool(np.array_equal(loaded.hu, vol.hu)),
                           "peak_rss_mb": _peak_rss_mb()}
            del loaded

    labels = ph.truth
    if not args.no_segmentation:
        try:
            from .segmentation import get_segmenter
        except ImportError as exc:
            res["segmentation"] = {"skipped": f"segmentation unavailable: {exc}"}
        else:
            gc.collect()
            _reset_peak_rss()
            t0 = time.perf_counter()
            seg = get_segmenter("classical").propose(vol, backend="numpy")
            total = time.perf_counter() - t0
            res["segmentation"] = {"total_s": total, "stages_s": dict(seg.timings),
                                   "backend": seg.provenance.get("backend", "numpy"),
                                   "peak_rss_mb": _peak_rss_mb()}
            del seg

    gc.collect()
    _reset_peak_rss()
    res["densitometry"] = bench_densitometry(vol, labels, args.repeat)
    res["brush_stroke"] = bench_strokes(vol, labels.copy(), 200, 10, "auto")
    res["peak_rss_mb_core"] = _peak_rss_mb()  # load, segmentation, densitometry, strokes
    del ph, vol, labels

    if args.json:
        print(json.dumps(res, indent=2))
    else:
        _print_report(res)
    return 0


def _gui_bench(shape: tuple[int, int, int] = (600, 512, 512), *,
               with_segmentation: bool = True) -> dict[str, Any]:
    """The workstation benchmarks run in a child process (Qt offscreen, its own peak memory)."""
    import subprocess

    open_shape = (min(300, shape[0]), shape[1], shape[2])
    code = ("import json; from readerapp.gui.bench_gui import run_gui_benchmarks; "
            f"print('RESULT' + json.dumps(run_gui_benchmarks({shape!r}, {open_shape!r}, "
            f"with_segmentation={with_segmentation!r})))")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               VTK_DEFAULT_OPENGL_WINDOW="vtkOSOpenGLRenderWindow")
    env.pop("DISPLAY", None)
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=900)
    except subprocess.TimeoutExpired:
        return {"skipped": "timed out"}
    for line in r.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])
    return {"skipped": (r.stderr.strip().splitlines() or ["no output"])[-1][:300]}


def _print_report(r: dict[str, Any]) -> None:
    def line(name: str, value: float | None, unit: str, target: float | None = None) -> None:
        if value is None:
            return
        ratio = f"   ({value / target:.2f}x the {target:g} {unit} target)" if target else ""
        print(f"  {name:<44} {value:10.2f} {unit}{ratio}")

    c = r["case"]
    print(f"ReaderApp {r['readerapp_version']} benchmark, {r['cpu_count']} CPUs; GPU: {r['cupy']}")
    print(f"case: synthetic chest {c['shape_zyx']} (z, y, x), spacing {c['spacing_xyz_mm']} mm")
    ld = r.get("load", {})
    print("loading (DICOM, uncompressed):")
    if "skipped" in ld:
        print(f"  skipped: {ld['skipped']}")
    else:
        line("load series", ld["seconds_min"], "s")
        print(f"  {'identical to the written volume':<44} {ld['identical']}")
    sg = r.get("segmentation", {})
    print("automatic segmentation (numpy):")
    if "skipped" in sg:
        print(f"  skipped: {sg['skipped']}")
    elif sg:
        # Issue target: 10 s for 300 slices, scaled to this case's slice count.
        line("total", sg["total_s"], "s", 10.0 * c["shape_zyx"][0] / 300)
        for k, v in sg["stages_s"].items():
            line(f"  {k}", v, "s")
    d = r["densitometry"]
    print("densitometry from scratch:")
    line("numpy (numba, fused pass)", d["numpy_ms"], "ms", 100.0)
    line("  effective bandwidth", d["numpy_gb_per_s"], "GB/s")
    line("numpy without numba (fallback)", d["numpy_without_numba_ms"], "ms", 100.0)
    line("cupy (fused kernel)", d.get("cupy_ms"), "ms")
    b = r["brush_stroke"]
    print(f"brush stroke update ({b['backend']}, sphere r=10, {b['voxels_per_stroke_median']} voxels):")
    line("median", b["median_ms"], "ms", 5.0)
    line("95th percentile", b["p95_ms"], "ms", 5.0)
    print("peak memory (resident, each stage with the case's CT and labels in memory):")
    line("  loading (the series written, then read twice)", r.get("load", {}).get("peak_rss_mb"), "MB")
    line("  segmentation", r.get("segmentation", {}).get("peak_rss_mb"), "MB")
    line("  densitometry and brush strokes", r["peak_rss_mb_core"], "MB")
    line("  CT + labels of the case", r["case_mb"], "MB")
    g = r.get("gui")
    if g:
        _print_gui(g)


#: Targets of the workstation figures (ms): issue 9, 2-core machine, software OpenGL.
GUI_TARGETS_MS = {
    "events_brush_move_to_redrawn_slice_p95_ms": 33.0,
    "events_wheel_notch_to_redrawn_views_p95_ms": 33.0,
}


def _print_gui(g: dict[str, Any]) -> None:
    print("workstation:")
    if "skipped" in g:
        print(f"  skipped: {g['skipped']}")
        return
    units = {"_ms": "ms", "_s": "s", "_kb": "kB", "_mb": "MB"}
    for k, v in g.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            unit = next((u for suf, u in units.items() if k.endswith(suf) or suf + "_" in k), "")
            target = GUI_TARGETS_MS.get(k)
            ratio = f"   ({float(v) / target:.2f}x the {target:g} ms target)" if target else ""
            print(f"  {k:<52} {float(v):10.2f} {unit}{ratio}")


if __name__ == "__main__":
    sys.exit(main())
