"""Grouping headers into series and deciding, from headers alone, how a series becomes a volume.

:func:`plan_volume` checks everything that can be checked without pixels (modality, geometry,
matrix sizes, gaps, spacing, tilt) and either raises :class:`SeriesError` with a message naming
the series or file, what is wrong and what to do, or returns a :class:`Plan`: the frames in order
along the slice normal, duplicate groups to compare once decoded, and the corrections to apply,
each with the warning that stays with the volume.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from pydicom.uid import generate_uid

from ..errors import SeriesError
from ._dicom_files import FileHeader, FrameGeometry

#: Slice planes tilted more than this from the patient's axial plane are not axial.
AXIAL_MAX_DEG = 30.0
#: Tilt of the slice plane below this is ignored; above, a warning records it.
OBLIQUE_WARN_DEG = 0.5
#: A spacing this many times the median between neighbouring positions is a missing slice.
GAP_FACTOR = 1.5
#: Spacing deviating from the median by more than this fraction is resampled to even spacing.
UNEVEN_TOLERANCE = 0.01
#: Slices within this fraction of a spacing of an even grid are not resampled (rounded positions).
GRID_TOLERANCE = 0.1
#: Largest gantry tilt that is corrected (by shifting slices in-plane) rather than refused.
MAX_TILT_DEG = 30.0


@dataclass(frozen=True)
class SeriesInfo:
    """One series found by :func:`readerapp.io.dicom.discover_series` (nothing identifying)."""

    uid: str
    modality: str
    #: Modality, matrix, frame count and the series description, for a chooser.
    description: str
    n_files: int
    n_frames: int
    #: Whether this series can be loaded as an axial CT (the automatic choice picks among these).
    is_axial_ct: bool
    study_uid: str = ""
    #: Why it is not an axial CT candidate (empty for candidates).
    reason: str = ""


@dataclass
class Series:
    uid: str
    files: list[FileHeader]
    #: True when the files carried no SeriesInstanceUID and ``uid`` was derived from other fields.
    derived_uid: bool = False

    @property
    def n_frames(self) -> int:
        return sum(h.n_frames for h in self.files if h.has_pixels is not False)

    @property
    def modality(self) -> str:
        mods = sorted({h.modality or "?" for h in self.files})
        return "/".join(mods)

    def label(self) -> str:
        """How messages name this series."""
        where = self.files[0].source.folder if self.files else ""
        return f"series {self.uid} ({self.modality}, {len(self.files)} file(s) in {where})"

    def info(self) -> SeriesInfo:
        reason = candidate_problem(self) or ""
        h = self.files[0]
        size = f"{h.columns}x{h.rows}" if h.rows and h.columns else "no image"
        desc = f"{self.modality} {size}, {self.n_frames} frame(s)"
        if h.series_description:
            desc += f", '{h.series_description}'"
        return SeriesInfo(
            uid=self.uid,
            modality=self.modality,
            description=desc,
            n_files=len(self.files),
            n_frames=self.n_frames,
            is_axial_ct=not reason,
            study_uid=h.study_uid,
            reason=reason,
        )


def group_series(headers: list[FileHeader]) -> list[Series]:
    """Files grouped by SeriesInstanceUID (files without one: by study, frame of reference, folder)."""
    groups: dict[str, list[FileHeader]] = defaultdict(list)
    derived: set[str] = set()
    for h in headers:
        uid = h.series_uid
        if not uid:
            uid = str(
                generate_uid(
                    entropy_srcs=[
                        "readerapp:no-series-uid",
                        h.study_uid,
                        h.frame_of_reference,
                        h.series_number,
                        h.modality,
                        h.source.folder,
                    ]
                )
            )
            derived.add(uid)
        groups[uid].append(h)
    return [Series(uid=u, files=fs, derived_uid=u in derived) for u, fs in groups.items()]


# --------------------------------------------------------------------------- geometry helpers


def normal_of(orientation: tuple[float, ...]) -> np.ndarray:
    row = np.asarray(orientation[:3], float)
    col = np.asarray(orientation[3:], float)
    n = np.cross(row, col)
    norm = float(np.linalg.norm(n))
    return n / norm if norm > 0 else n


def obliquity_deg(orientation: tuple[float, ...]) -> float:
    """Angle in degrees between the slice normal and the patient's head-foot (z) axis."""
    n = normal_of(orientation)
    return math.degrees(math.acos(min(1.0, abs(float(n[2])))))


def plane_name(orientation: tuple[float, ...]) -> str:
    n = np.abs(normal_of(orientation))
    return ("sagittal", "coronal", "axial")[int(np.argmax(n))]


def candidate_problem(series: Series) -> str | None:
    """Why ``series`` cannot be the automatic choice of axial CT, or None if it can."""
    if series.modality != "CT":
        return f"modality {series.modality}, not CT"
    images = [h for h in series.files if h.has_pixels is not False]
    if not images:
        return "no pixel data"
    images = [h for h in images if not h.is_localizer]
    if not images:
        return "localizer images only"
    ori = [f.orientation for h in images for f in h.frames if f.orientation]
    if not ori:
        return "no ImageOrientationPatient"
    axial = sum(obliquity_deg(o) <= AXIAL_MAX_DEG for o in ori)
    if 2 * axial < len(ori):
        return f"not axial ({plane_name(ori[0])} slices)"
    return None


# --------------------------------------------------------------------------- the plan


@dataclass
class FrameRef:
    header: FileHeader
    #: Frame number inside a multi-frame file (0 for single-frame files).
    index: int
    geo: FrameGeometry

    @property
    def name(self) -> str:
        if self.header.n_frames > 1:
            return f"{self.header.name} (frame {self.index + 1})"
        return self.header.name


@dataclass
class Plan:
    series: Series
    #: Frames in order of increasing position along the slice normal (duplicates included).
    frames: list[FrameRef]
    #: Position of each frame along the normal (mm), ascending.
    positions: np.ndarray
    #: Groups of indices into ``frames`` sharing one position (compared once decoded).
    duplicate_groups: list[list[int]]
    pixel_spacing: tuple[float, float]  # (x, y) mm
    z_spacing: float
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    #: In-plane shift (rows, columns) in pixels per frame to undo a gantry tilt, or None.
    shear_shifts: np.ndarray | None = None
    #: Even positions (mm along the normal) to interpolate onto, or None when already even.
    resample_to: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


def _refuse(series: Series, problem: str, todo: str) -> SeriesError:
    return SeriesError(f"{series.label()}: {problem}. {todo}")


def _names(frames: list[FrameRef], limit: int = 3) -> str:
    names = [f.name for f in frames[:limit]]
    more = f" and {len(frames) - limit} more" if len(frames) > limit else ""
    return ", ".join(names) + more


def plan_volume(series: Series, *, fill_gaps: bool = False) -> Plan:
    """Check ``series`` from its headers and plan its volume, or refuse it with a clear message."""
    warnings: list[str] = []
    if series.derived_uid:
        warnings.append(
            "the files carry no SeriesInstanceUID; they were grouped by study, frame of reference "
            f"and folder under the derived identifier {series.uid}"
        )
    if series.modality != "CT":
        raise _refuse(series, f"the modality is {series.modality or 'missing'}, not CT",
                      "ReaderApp measures CT only; choose a CT series")
    for h in series.files:
        if h.problems:
            raise SeriesError(
                f"{h.name}: the DICOM header is damaged: {'; '.join(h.problems[:3])}. "
                "Re-export the series from the scanner or PACS"
            )
        if h.has_pixels is False:
            raise SeriesError(
                f"{h.name}: the file has no pixel data (transfer syntax {h.transfer_syntax or 'unknown'}). "
                "Remove it from the input or re-export the series with its images"
            )
        if not h.rows or not h.columns:
            raise SeriesError(f"{h.name}: Rows/Columns are missing, so the image size is unknown. Re-export the series")
        if h.samples_per_pixel != 1:
            raise SeriesError(
                f"{h.name}: the image has {h.samples_per_pixel} samples per pixel (colour), not a CT image "
                "in Hounsfield units. Choose the original CT series, not a screenshot or secondary capture"
            )

    frames = [FrameRef(h, i, g) for h in series.files for i, g in enumerate(h.frames)]
    # Secondary captures riding along in the series (a dose report, a screenshot) have no place in
    # the stack: dropped with a warning when they lack geometry and differ from the majority.
    usual = Counter((f.header.rows, f.header.columns) for f in frames).most_common(1)[0][0]

    def no_geometry(f: FrameRef) -> bool:
        return f.geo.position is None or f.geo.orientation is None

    extras = [f for f in frames if no_geometry(f) and (
        "SECONDARY" in f.header.image_type or (f.header.rows, f.header.columns) != usual)]
    if extras and len(extras) < len(frames):
        frames = [f for f in frames if not any(f is e for e in extras)]
        warnings.append(f"dropped {len(extras)} secondary image(s) without slice position from the "
                        f"series ({_names(extras)})")
    for f in frames:
        for attr, kw in (("position", "ImagePositionPatient"), ("orientation", "ImageOrientationPatient"),
                         ("pixel_spacing", "PixelSpacing")):
            if getattr(f.geo, attr) is None:
                raise SeriesError(
                    f"{f.name}: {kw} is missing, so the slice's geometry is unknown (ReaderApp never "
                    "takes geometry from file order or InstanceNumber). Re-export the series with full headers"
                )

    # Localizers and non-axial images that ride along in the series are dropped with a warning.
    def localizer_like(f: FrameRef) -> bool:
        return f.header.is_localizer or obliquity_deg(f.geo.orientation) > AXIAL_MAX_DEG  # type: ignore[arg-type]

    dropped = [f for f in frames if localizer_like(f)]
    frames = [f for f in frames if not localizer_like(f)]
    if not frames:
        plane = plane_name(dropped[0].geo.orientation)  # type: ignore[arg-type]
        raise _refuse(series, f"its images are not axial ({plane} or localizer images, e.g. {dropped[0].name})",
                      "ReaderApp measures axial CT; choose the axial reconstruction")
    if dropped:
        warnings.append(
            f"dropped {len(dropped)} localizer or non-axial image(s) from the series ({_names(dropped)})"
        )

    sizes = Counter((f.header.rows, f.header.columns) for f in frames)
    if len(sizes) > 1:
        desc = ", ".join(f"{c}x{r} ({n} slices)" for (r, c), n in sizes.most_common())
        minority = [f for f in frames if (f.header.rows, f.header.columns) != sizes.most_common(1)[0][0]]
        raise _refuse(
            series, f"the slices have mixed matrix sizes: {desc}; e.g. {_names(minority, 2)}",
            "Export a single reconstruction, or choose one series with --series",
        )

    ref = frames[0].geo.orientation
    assert ref is not None
    row = np.asarray(ref[:3], float)
    col = np.asarray(ref[3:], float)
    row /= np.linalg.norm(row)
    col /= np.linalg.norm(col)
    n = normal_of(ref)
    for f in frames:
        o = np.asarray(f.geo.orientation, float)
        cos_r = float(o[:3] @ row) / float(np.linalg.norm(o[:3]))
        cos_c = float(o[3:] @ col) / float(np.linalg.norm(o[3:]))
        worst = math.degrees(math.acos(min(1.0, min(cos_r, cos_c))))
        if worst > 0.5:
            raise _refuse(series, f"the image orientation differs between slices by {worst:.1f} degrees "
                          f"({frames[0].name} and {f.name})", "Export a single reconstruction")
    tilt_plane = obliquity_deg(ref)
    if tilt_plane > OBLIQUE_WARN_DEG:
        warnings.append(
            f"the slice plane is tilted {tilt_plane:.1f} degrees from the patient's axial plane "
            "(oblique reconstruction or gantry tilt); the geometry is kept in the direction matrix"
        )

    for f in frames:
        if f.geo.slope == 0:
            raise SeriesError(f"{f.name}: RescaleSlope is 0, so stored values cannot become HU. Re-export the series")
    ps = np.array([f.geo.pixel_spacing for f in frames], float)
    if np.any(ps <= 0):
        raise SeriesError(f"{frames[int(np.argmin(ps.min(axis=1)))].name}: PixelSpacing is not positive. Re-export the series")
    if np.ptp(ps, axis=0).max() > 1e-3 * ps.max():
        raise _refuse(series, f"PixelSpacing differs between slices ({ps.min():.4g} to {ps.max():.4g} mm)",
                      "Export a single reconstruction")
    sy, sx = (float(v) for v in np.median(ps, axis=0))

    pos = np.array([f.geo.position for f in frames], float)
    d = pos @ n
    order = sorted(range(len(frames)), key=lambda i: (d[i], frames[i].name))
    frames = [frames[i] for i in order]
    pos = pos[order]
    d = d[order]

    # Duplicated positions: group frames whose positions (along the normal) coincide.
    diffs = np.diff(d)
    positive = diffs[diffs > 1e-3]
    med = float(np.median(positive)) if positive.size else 0.0
    dup_tol = max(1e-3, 0.05 * med)
    groups: list[list[int]] = [[0]]
    for i in range(1, len(frames)):
        if d[i] - d[groups[-1][0]] <= dup_tol:
            groups[-1].append(i)
        else:
            groups.append([i])
    duplicate_groups = [g for g in groups if len(g) > 1]
    reps = [g[0] for g in groups]
    u = d[reps]

    origin = tuple(float(v) for v in pos[0])
    direction = tuple(float(v) for v in np.column_stack([row, col, n]).reshape(-1))
    plan = Plan(series=series, frames=frames, positions=d, duplicate_groups=duplicate_groups,
                pixel_spacing=(sx, sy), z_spacing=0.0, origin=origin, direction=direction,  # type: ignore[arg-type]
                warnings=warnings)

    if len(u) == 1:
        h = frames[0].header
        if h.spacing_between_slices and h.spacing_between_slices > 0:
            plan.z_spacing = float(h.spacing_between_slices)
            src = "SpacingBetweenSlices"
        elif frames[0].geo.thickness and frames[0].geo.thickness > 0:
            plan.z_spacing = float(frames[0].geo.thickness)
            src = "SliceThickness"
        else:
            raise _refuse(series, "it has a single slice and neither SpacingBetweenSlices nor SliceThickness",
                          "the slice's volume is unknown; load the complete series")
        warnings.append(f"single-slice series: the slice spacing ({plan.z_spacing:g} mm) comes from {src}, "
                        "not from slice positions; volumes are those of one slice")
        return plan

    du = np.diff(u)
    m = float(np.median(du))
    plan.z_spacing = m
    gaps = np.nonzero(du > GAP_FACTOR * m)[0]
    if gaps.size:
        k = int(gaps[0])
        a, b = frames[reps[k]], frames[reps[k + 1]]
        missing = int(round(du[k] / m)) - 1
        where = (f"between {a.name} at {u[k]:.2f} mm and {b.name} at {u[k + 1]:.2f} mm: a gap of "
                 f"{du[k]:.2f} mm where the median spacing is {m:.2f} mm (about {max(missing, 1)} slice(s))")
        if not fill_gaps:
            raise _refuse(series, f"{gaps.size} gap(s) in the slice positions (missing slices), first {where}",
                          "Re-export or re-send the complete series")
        warnings.append(f"{gaps.size} gap(s) of missing slices were filled by linear interpolation, first {where}")
    uneven = float(np.max(np.abs(du - m)) / m)
    step = float((u[-1] - u[0]) / (len(u) - 1))
    off_grid = float(np.max(np.abs(u - (u[0] + step * np.arange(len(u))))))
    if not gaps.size and uneven > UNEVEN_TOLERANCE and off_grid <= GRID_TOLERANCE * step:
        # Positions rounded in the header (say to 0.1 mm) make neighbour spacings alternate, yet
        # every slice lies on an even grid: keep the slices, take the grid's spacing.
        plan.z_spacing = step
    elif gaps.size or uneven > UNEVEN_TOLERANCE:
        n_new = int(round((u[-1] - u[0]) / m)) + 1
        plan.resample_to = np.linspace(u[0], u[-1], n_new)
        plan.z_spacing = float((u[-1] - u[0]) / (n_new - 1))
        if not gaps.size:
            warnings.append(
                f"uneven slice spacing ({du.min():.3f} to {du.max():.3f} mm, median {m:.3f} mm) was "
                f"resampled by linear interpolation to {n_new} slices {plan.z_spacing:.3f} mm apart"
            )

    # Gantry tilt: positions step sideways in the slice plane as well as along the normal.
    r = pos - pos[0] - np.outer(d - d[0], n)
    shift_mm = np.column_stack([r @ col, r @ row])  # (rows direction, columns direction)
    worst = float(np.abs(shift_mm).max())
    if worst > 0.25 * min(sx, sy):
        extent = float(d[-1] - d[0])
        tilt = math.degrees(math.atan2(float(np.linalg.norm(r[-1])), extent)) if extent > 0 else 90.0
        if tilt > MAX_TILT_DEG:
            raise _refuse(series, f"the slices are sheared by a gantry tilt of {tilt:.1f} degrees",
                          f"ReaderApp corrects tilts up to {MAX_TILT_DEG:.0f} degrees; export a reformatted axial series")
        plan.shear_shifts = shift_mm / np.array([sy, sx])
        warnings.append(
            f"gantry tilt of about {tilt:.1f} degrees: slices were shifted in-plane by up to {worst:.1f} mm "
            "(linear interpolation) onto a grid perpendicular to the slices"
        )
    return plan
