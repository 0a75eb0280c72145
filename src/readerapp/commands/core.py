"""``readerapp analyze`` and ``readerapp measure``: the measuring core from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..backend import BACKEND_CHOICES
from ..endpoints import SegmentationSource

SOURCE_CHOICES = tuple(s.value for s in SegmentationSource)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "analyze",
        help="segment chest CT series automatically and measure the endpoints",
        description="Load each SERIES (a folder searched recursively, DICOM files or a zip), "
        "segment lungs and lesions automatically and write PROTOCOL.md's endpoints as JSON.",
    )
    p.add_argument("series", nargs="+", metavar="SERIES", help="folder, DICOM file(s) or .zip")
    p.add_argument("--json", required=True, metavar="OUT.json", help="where to write the JSON ('-' for stdout)")
    p.add_argument("--labels-out", metavar="LABELS.nii.gz", help="write the label map (NIfTI or NRRD)")
    p.add_argument("--series-uid", "--series", dest="series_uids", action="append", metavar="UID",
                   help="analyse this SeriesInstanceUID (repeatable); default: the axial CT series of each input")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto", help="compute backend (default: auto)")
    p.add_argument("--method", default="classical", help="segmentation method (default: classical)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--fill-gaps", action="store_true",
                   help="interpolate over missing slices (with a warning) instead of refusing the series")
    p.set_defaults(func=run_analyze)

    m = sub.add_parser(
        "measure",
        help="measure the endpoints of a series under a given label map",
        description="Measure PROTOCOL.md's endpoints of SERIES under LABELS (NIfTI or NRRD on the "
        "series' grid, values 0 outside, 1 lung, 2 ground glass, 3 consolidation).",
    )
    m.add_argument("series", metavar="SERIES", help="folder, DICOM file(s) or .zip")
    m.add_argument("--labels", required=True, metavar="LABELS", help="label map, or a read folder")
    m.add_argument("--json", required=True, metavar="OUT.json", help="where to write the JSON ('-' for stdout)")
    m.add_argument("--series-uid", "--series", dest="series_uids", action="append", metavar="UID")
    m.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    m.add_argument("--source", choices=SOURCE_CHOICES, default=SegmentationSource.CORRECTED.value,
                   help="how the label map was made (recorded in the JSON)")
    m.add_argument("--fill-gaps", action="store_true",
                   help="interpolate over missing slices (with a warning) instead of refusing the series")
    m.set_defaults(func=run_measure)

    s = sub.add_parser(
        "series",
        help="list the DICOM series found under a folder, files or zip",
        description="List every series found (UID, modality, size, whether it is an axial CT "
        "that ReaderApp can measure), to pick one with --series-uid.",
    )
    s.add_argument("inputs", nargs="+", metavar="PATH")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=run_series)


def _load(inputs: list[str], uids: list[str] | None, progress: Any, fill_gaps: bool = False) -> list[Any]:
    from ..io.dicom import load_series

    if uids:
        return load_series(inputs, series_uids=uids, progress=progress, fill_gaps=fill_gaps)
    volumes = []
    for item in inputs:
        volumes.extend(load_series([item], progress=progress, fill_gaps=fill_gaps))
    return volumes


def run_series(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..io.dicom import discover_series

    found = discover_series(args.inputs)
    if args.json:
        _write_json("-", [asdict(s) for s in found])
        return 0
    for s in found:
        mark = "axial CT" if s.is_axial_ct else f"not measurable: {s.reason}"
        print(f"{s.uid}  {s.description}  ({s.n_files} files, {s.n_frames} frames)  [{mark}]")
    return 0


def _labels_path(base: str, index: int, total: int) -> Path:
    p = Path(base)
    if total == 1:
        return p
    name = p.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha"):
        if name.lower().endswith(suffix):
            return p.with_name(f"{name[: -len(suffix)]}-{index + 1}{name[-len(suffix):]}")
    return p.with_name(f"{name}-{index + 1}")


def _write_json(target: str, payload: Any) -> None:
    text = json.dumps(payload, indent=2, allow_nan=False)
    if target == "-":
        sys.stdout.write(text + "\n")
        return
    from ..errors import ReaderAppError
    from ..fileio import atomic_write_text

    try:
        atomic_write_text(target, text + "\n")
    except OSError as exc:  # a missing drive, no permission, disk full: the user's to fix
        raise ReaderAppError(f"{target}: cannot write the results ({exc.strerror or exc})") from exc


def run_analyze(args: argparse.Namespace) -> int:
    from ..analysis import analyze
    from ..io.labelmap import write_labelmap
    from ._progress_bar import ProgressBar

    bar = ProgressBar("loading", quiet=args.quiet)
    volumes = _load(args.series, args.series_uids, bar, args.fill_gaps)
    bar.close()
    results = []
    for i, vol in enumerate(volumes):
        bar = ProgressBar(f"series {i + 1}/{len(volumes)}", quiet=args.quiet)
        res = analyze(vol, backend=args.backend, method=args.method, progress=bar)
        bar.close()
        if args.labels_out:
            out = write_labelmap(_labels_path(args.labels_out, i, len(volumes)), res.labels, vol)
            res.labels_path = str(out)
        results.append(res.to_json())
    _write_json(args.json, results[0] if len(results) == 1 else results)
    return 0


def run_measure(args: argparse.Namespace) -> int:
    from ..analysis import measure
    from ..io.labelmap import read_labelmap

    (vol, *rest) = _load([args.series], args.series_uids, lambda f, m: None, args.fill_gaps)
    if rest:
        from ..errors import SeriesError

        raise SeriesError(
            f"{args.series}: several series selected; name one with --series-uid"
        )
    labels_arg = Path(args.labels)
    if labels_arg.is_dir():
        candidates = sorted(labels_arg.glob("labels.*"))
        if not candidates:
            from ..errors import LabelMapError

            raise LabelMapError(f"{labels_arg}: folder holds no labels.nii.gz (not a read folder)")
        labels_arg = candidates[0]
    warnings: list[str] = []
    labels = read_labelmap(labels_arg, vol, warnings)
    res = measure(vol, labels, backend=args.backend, source=args.source, warnings=warnings)
    res.labels_path = str(labels_arg)
    _write_json(args.json, res.to_json())
    return 0
