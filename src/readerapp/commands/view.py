"""``readerapp view``: the reader's workstation window (PySide6 + VTK, imported only when run)."""

from __future__ import annotations

import argparse

from ..backend import BACKEND_CHOICES


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "view",
        help="open the reading workstation (optionally on a series)",
        description="Open the reader's workstation window. With SERIES, open that DICOM series "
        "folder at once; with --labels, start from that label map (NIfTI/NRRD or a saved read "
        "folder) instead of the automatic proposal. --screenshot renders the window without a "
        "display, saves it and exits.",
    )
    p.add_argument("series", nargs="*", metavar="SERIES", help="DICOM series folder or files")
    p.add_argument("--labels", metavar="LABELS", help="label map (.nii.gz/.nrrd) or read folder")
    p.add_argument("--screenshot", metavar="OUT.png",
                   help="render the whole window offscreen to this image and exit")
    p.add_argument("--size", default="1600x1000", metavar="WxH",
                   help="window size in pixels (default 1600x1000)")
    p.add_argument("--slice", type=int, metavar="N",
                   help="start on image N as the PACS numbers it (DICOM InstanceNumber, shown as "
                        "'Im N' in the axial view); a series without image numbers counts from "
                        "its first (inferior) slice, and says so")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                   help="densitometry backend for the live numbers (default: auto)")
    p.add_argument("--restore", choices=("ask", "restore", "discard"), default="ask",
                   help="what to do with unsaved edits journaled by a crashed session")
    p.set_defaults(func=run_view)


def run_view(args: argparse.Namespace) -> int:
    from ..errors import ReaderAppError

    try:
        w, h = (int(v) for v in str(args.size).lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError("non-positive size")
    except ValueError as exc:
        raise ReaderAppError(f"--size must look like 1600x1000, got {args.size!r}") from exc
    if args.labels and not args.series:
        raise ReaderAppError("--labels needs a SERIES to go with it")
    from ..gui.app import run

    return run(
        list(args.series) or None,
        args.labels,
        screenshot_path=args.screenshot,
        backend=args.backend,
        restore=args.restore,
        size=(w, h),
        slice_number=args.slice,
    )
