"""DICOM series discovery and loading: folders, files or zip archives in, :class:`CTVolume` out.

Geometry always comes from ImagePositionPatient / ImageOrientationPatient (slices ordered along
the slice normal, never by file order or InstanceNumber); stored values become HU through each
slice's RescaleSlope / RescaleIntercept; padding outside the field of view becomes
:data:`~readerapp.volume.PADDING_HU`. Anything that would make a measurement wrong is either
refused with a :class:`~readerapp.errors.SeriesError` naming the series or file, what is wrong and
what to do, or corrected with a warning kept in ``CTVolume.warnings``:

=============================  ==========================================================
missing slice (gap)            refused (``fill_gaps=True`` interpolates, with a warning)
duplicated positions           identical pixels: extra copies dropped (warning); else refused
uneven spacing (> 1 %)         resampled linearly to even spacing (warning); jitter accepted
gantry tilt (sheared stack)    slices shifted in-plane onto an orthogonal grid (warning), > 30 deg refused
oblique slice plane            kept in the direction matrix (warning); not axial (> 30 deg) refused
mixed matrix sizes             refused; localizer / non-axial images in the series dropped (warning)
non-CT modality                refused, naming the modality
no / undecodable pixel data    refused, naming the file, transfer syntax and decoder package
not DICOM                      skipped and counted (warning); refused if nothing else is found
missing rescale                refused, unless stored values are visibly HU already (warning)
single slice                   loaded as a 1-slice volume when SpacingBetweenSlices or
                               SliceThickness gives its thickness (warning); refused otherwise
=============================  ==========================================================
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import UID

from ..errors import SeriesError
from ..labels import PADDING_BELOW_HU
from ..progress import ProgressFn, no_progress, scaled
from ..volume import CTVolume
from ._dicom_files import Archive, FileHeader, Skipped, expand_inputs, quiet_pydicom, read_headers
from ._dicom_pixels import decode_file, to_hu, ts_label
from ._dicom_resample import deshear, resample_z
from ._dicom_series import Plan, Series, SeriesInfo, candidate_problem, group_series, plan_volume

__all__ = ["SeriesInfo", "discover_series", "load_series"]

log = logging.getLogger(__name__)

_LOSSY_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
                   "1.2.840.10008.1.2.4.203"}

InputList = Sequence[str | Path] | str | Path


def _describe_inputs(inputs: InputList) -> str:
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    text = ", ".join(str(i) for i in items[:3])
    return text + (f" and {len(items) - 3} more" if len(items) > 3 else "")


def _skipped_summary(skipped: list[Skipped], limit: int = 3) -> str:
    parts = [f"{s.source.name}: {s.reason}" for s in skipped[:limit]]
    if len(skipped) > limit:
        parts.append(f"{len(skipped) - limit} more")
    return "; ".join(parts)


def _scan(inputs: InputList, progress: ProgressFn) -> tuple[list[Series], list[Skipped], list[Archive]]:
    sources, archives = expand_inputs(inputs)  # type: ignore[arg-type]
    try:
        results = read_headers(sources, progress=progress)
    except BaseException:
        for a in archives:
            a.close()
        raise
    headers = [r for r in results if isinstance(r, FileHeader)]
    skipped = [r for r in results if isinstance(r, Skipped)]
    if skipped:
        log.info("skipped %d file(s) that are not readable DICOM: %s", len(skipped), _skipped_summary(skipped))
    if not headers:
        for a in archives:
            a.close()
        found = f"{len(sources)} file(s), none readable as DICOM" if sources else "no files at all"
        detail = f" ({_skipped_summary(skipped)})" if skipped else ""
        raise SeriesError(
            f"{_describe_inputs(inputs)}: no DICOM series found: {found}{detail}. "
            "Point ReaderApp at the folder, files or zip archive holding the CT series"
        )
    return group_series(headers), skipped, archives


def discover_series(inputs: InputList, progress: ProgressFn = no_progress) -> list[SeriesInfo]:
    """The series found under ``inputs`` (headers only), axial CT candidates first, largest first.

    Files that are not DICOM are skipped (and logged); if nothing readable is found at all a
    :class:`SeriesError` names the input and what was found there.
    """
    series, skipped, archives = _scan(inputs, progress)
    for a in archives:
        a.close()
    if skipped:
        log.warning("skipped %d file(s) that are not readable DICOM: %s", len(skipped), _skipped_summary(skipped))
    infos = [s.info() for s in series]
    return sorted(infos, key=lambda i: (not i.is_axial_ct, -i.n_frames, i.uid))


def _choose(series: list[Series], series_uids: Sequence[str] | None, inputs: InputList) -> tuple[list[Series], list[str]]:
    """The series to load, and warnings about the choice."""
    by_uid = {s.uid: s for s in series}
    if series_uids:
        if isinstance(series_uids, str):
            series_uids = [series_uids]
        unknown = [u for u in series_uids if u not in by_uid]
        if unknown:
            avail = "; ".join(f"{s.uid} ({s.info().description})" for s in series[:10])
            raise SeriesError(
                f"series {', '.join(unknown)} not found in {_describe_inputs(inputs)}. "
                f"Available: {avail}. Name one of these with --series"
            )
        return [by_uid[u] for u in dict.fromkeys(series_uids)], []
    candidates = [s for s in series if candidate_problem(s) is None]
    if not candidates:
        found = "; ".join(f"{s.uid}: {s.info().description} ({candidate_problem(s)})" for s in series[:6])
        more = f"; and {len(series) - 6} more" if len(series) > 6 else ""
        raise SeriesError(
            f"{_describe_inputs(inputs)}: no axial CT series found. Found {len(series)} series: {found}{more}. "
            "ReaderApp measures axial CT; point it at a CT series"
        )
    candidates.sort(key=lambda s: (-s.n_frames, s.uid))
    chosen = candidates[0]
    warnings = []
    if len(candidates) > 1:
        others = ", ".join(f"{s.uid} ({s.n_frames} slices)" for s in candidates[1:4])
        warnings.append(
            f"{len(candidates)} axial CT series were found; the largest ({chosen.uid}, "
            f"{chosen.n_frames} slices) was loaded, not {others}. Name one with --series to choose"
        )
    return [chosen], warnings


def load_series(
    inputs: InputList,
    series_uids: Sequence[str] | None = None,
    progress: ProgressFn = no_progress,
    *,
    fill_gaps: bool = False,
    workers: int | None = None,
) -> list[CTVolume]:
    """Load the axial CT series under ``inputs`` (or those named by ``series_uids``) as HU volumes.

    Without ``series_uids`` the largest axial CT series is chosen. ``fill_gaps`` interpolates over
    missing slices instead of refusing the series (with a warning). Raises :class:`SeriesError`
    for anything that cannot be loaded correctly; see the module docstring for each case.
    """
    series, skipped, archives = _scan(inputs, scaled(progress, 0.0, 0.15))
    try:
        chosen, choice_warnings = _choose(series, series_uids, inputs)
        volumes = []
        for i, s in enumerate(chosen):
            lo = 0.15 + 0.85 * i / len(chosen)
            hi = 0.15 + 0.85 * (i + 1) / len(chosen)
            plan = plan_volume(s, fill_gaps=fill_gaps)
            vol = _build_volume(plan, scaled(progress, lo, hi), workers)
            if skipped:
                vol.warnings.insert(
                    0, f"skipped {len(skipped)} file(s) that are not readable DICOM ({_skipped_summary(skipped)})"
                )
            vol.warnings[:0] = choice_warnings
            volumes.append(vol)
        progress(1.0, "series loaded")
        return volumes
    finally:
        for a in archives:
            a.close()


#: Transfer syntaxes decoded by plain reads (fast in threads).
_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
#: Compressed series with at least this many files are decoded in worker processes, because the
#: JPEG 2000 and JPEG-LS decoders hold the GIL (threads would not run them in parallel).
PROCESS_MIN_FILES = 24


def _wants_processes(headers: list[FileHeader], workers: int | None) -> bool:
    if workers == 1 or (os.cpu_count() or 1) < 2 or len(headers) < PROCESS_MIN_FILES:
        return False
    if getattr(sys, "frozen", False):  # a frozen app would need multiprocessing.freeze_support()
        return False
    compressed = sum(h.transfer_syntax not in _NATIVE for h in headers)
    return compressed * 2 > len(headers) and all(h.source.path is not None for h in headers)


def _decode_and_apply(apply: Callable[[int, np.ndarray], int], key: int, header: FileHeader) -> int:
    return apply(key, decode_file(header))


def _process_pool(n_workers: int) -> ProcessPoolExecutor | None:
    """A pool of forked decoder processes, or None where forking is not safe or not available.

    Only ``fork`` starts workers without re-importing the caller's ``__main__`` (which breaks
    scripts and notebooks under spawn/forkserver), and forking is only safe while this process
    runs a single Python thread: a GUI that loads in a worker thread gets the thread pool instead.
    """
    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    try:
        return ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("fork"))
    except (ValueError, OSError):
        return None


def _decode_all(plan: Plan, progress: ProgressFn, workers: int | None) -> tuple[np.ndarray, int, bool]:
    """Every planned frame as HU into one preallocated (frames, rows, columns) int16 array."""
    h0 = plan.frames[0].header
    out = np.empty((len(plan.frames), int(h0.rows or 0), int(h0.columns or 0)), dtype=np.int16)
    slots: dict[int, list[int]] = defaultdict(list)
    headers: dict[int, FileHeader] = {}
    for k, f in enumerate(plan.frames):
        slots[id(f.header)].append(k)
        headers[id(f.header)] = f.header
    missing_rescale = any(f.geo.slope is None or f.geo.intercept is None for f in plan.frames)

    def apply(key: int, raw: np.ndarray) -> int:
        h = headers[key]
        count = 0
        for k in slots[key]:
            g = plan.frames[k].geo
            slope = 1.0 if g.slope is None else g.slope
            intercept = 0.0 if g.intercept is None else g.intercept
            count += to_hu(raw[plan.frames[k].index], out[k], slope, intercept, h.padding_value, h.padding_limit)
        return count

    keys = list(slots)
    n_workers = workers or max(2, min(8, (os.cpu_count() or 2)))
    pool = _process_pool(n_workers) if _wants_processes([headers[k] for k in keys], workers) else None
    padded = 0
    with quiet_pydicom():
        ex: Executor = pool or ThreadPoolExecutor(max_workers=n_workers)
        futures: dict[Future[Any], int]
        try:
            if pool is not None:  # decode in processes, convert to HU here
                futures = {ex.submit(decode_file, headers[k]): k for k in keys}
            else:
                futures = {ex.submit(_decode_and_apply, apply, k, headers[k]): k for k in keys}
            step = max(1, len(keys) // 100)
            for done_count, fut in enumerate(as_completed(futures), start=1):
                result = fut.result()  # re-raises a worker's SeriesError
                padded += apply(futures[fut], result) if isinstance(result, np.ndarray) else int(result)
                if done_count % step == 0 or done_count == len(keys):
                    progress(done_count / len(keys), f"decoding slices ({done_count}/{len(keys)} files)")
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
    return out, padded, missing_rescale


def _build_volume(plan: Plan, progress: ProgressFn, workers: int | None) -> CTVolume:
    series = plan.series
    warnings = list(plan.warnings)
    hu, padded, missing_rescale = _decode_all(plan, scaled(progress, 0.0, 0.9), workers)

    if missing_rescale:
        if any(f.geo.slope is not None or f.geo.intercept is not None for f in plan.frames):
            raise SeriesError(f"{series.label()}: RescaleSlope/RescaleIntercept are present on some slices and "
                              "missing on others. Re-export the series")
        air = np.count_nonzero((hu >= -1100) & (hu <= -900))
        if air < 0.001 * hu.size:
            raise SeriesError(
                f"{series.label()}: RescaleSlope/RescaleIntercept are missing, so stored values cannot "
                "safely be converted to Hounsfield units (they do not look like HU already: no air near "
                "-1000). Re-export the series with its rescale values"
            )
        warnings.append("RescaleSlope/RescaleIntercept are missing; the stored values are signed and show air "
                        "near -1000, so they were taken as HU unchanged")

    # Duplicated positions: identical copies are dropped, different images at one place refused.
    keep = np.ones(len(plan.frames), bool)
    dropped = 0
    for group in plan.duplicate_groups:
        first = group[0]
        for k in group[1:]:
            if not np.array_equal(hu[first], hu[k]):
                a, b = plan.frames[first], plan.frames[k]
                raise SeriesError(
                    f"{series.label()}: two different images lie at the same position "
                    f"({plan.positions[first]:.2f} mm along the slice normal): {a.name} and {b.name}. "
                    "The input mixes reconstructions or acquisitions; keep one copy of the series "
                    "or choose one with --series"
                )
            keep[k] = False
            dropped += 1
    positions = plan.positions
    shifts = plan.shear_shifts
    instances = [f.geo.instance_number for f in plan.frames]
    if dropped:
        warnings.append(f"dropped {dropped} duplicated slice(s) (same position, identical pixel data)")
        hu = hu[keep]
        positions = positions[keep]
        instances = [n for n, k in zip(instances, keep, strict=True) if k]
        shifts = shifts[keep] if shifts is not None else None
    if shifts is not None:
        progress(0.92, "correcting gantry tilt")
        hu = deshear(hu, shifts)
        padded = int(np.count_nonzero(hu < PADDING_BELOW_HU))
    if plan.resample_to is not None:
        progress(0.96, "resampling to even slice spacing")
        hu = resample_z(hu, positions, plan.resample_to)
        padded = int(np.count_nonzero(hu < PADDING_BELOW_HU))

    headers = list(dict.fromkeys(id(f.header) for f in plan.frames))
    by_id = {id(f.header): f.header for f in plan.frames}
    h0 = plan.frames[0].header
    ts_set = sorted({by_id[i].transfer_syntax for i in headers})
    if any(t in _LOSSY_SYNTAXES for t in ts_set) or any(by_id[i].lossy for i in headers):
        warnings.append("the images were stored with lossy compression; HU values may differ slightly "
                        "from the original scan")
    rescale_types = sorted({by_id[i].rescale_type for i in headers} - {"", "HU"})
    if rescale_types:
        warnings.append(f"RescaleType is {'/'.join(rescale_types)}, not HU; the rescaled values were used as HU")
    thick = [f.geo.thickness for f in plan.frames if f.geo.thickness]
    meta = {
        "modality": "CT",
        **{k: v for k, v in h0.meta.items() if v is not None},
        "slice_thickness_mm": float(np.median(thick)) if thick else None,
        "transfer_syntax": " / ".join(ts_label(t) for t in ts_set),
        "sop_class": UID(h0.sop_class).name if h0.sop_class else "",
        "enhanced": any(by_id[i].enhanced for i in headers),
        "n_files": len(headers),
        "n_frames_read": len(plan.frames),
        "padding_voxels": padded,
        # Per slice (z order) the InstanceNumber a PACS shows; None when some slice has none
        # or the slices were resampled (they are then no longer the scanner's images).
        "instance_numbers": (None if plan.resample_to is not None or any(n is None for n in instances)
                             else [int(n) for n in instances]),  # type: ignore[arg-type]
    }
    progress(1.0, "volume ready")
    return CTVolume(
        hu=np.ascontiguousarray(hu),
        spacing=(plan.pixel_spacing[0], plan.pixel_spacing[1], plan.z_spacing),
        origin=plan.origin,
        direction=plan.direction,
        series_uid=series.uid,
        study_uid=h0.study_uid,
        warnings=warnings,
        meta=meta,
    )
