"""Reader measurements on a slice: a distance ruler and regions of interest (ellipse or freehand)
with their area and HU statistics. Kept with the read (``measurements.json`` in the read folder).

Points are voxel positions ``(z, y, x)`` (floats); a measurement lies on one slice of one view
(``axis`` 0 axial, 1 coronal, 2 sagittal; ``index`` the slice). Values come from the CT, so a
measurement restored from a read shows the same numbers again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .errors import ReaderAppError

KINDS = ("ruler", "ellipse", "freehand")
FILE_NAME = "measurements.json"
FORMAT_VERSION = 1

Point = tuple[float, float, float]


class MeasurementError(ReaderAppError):
    """A measurement cannot be made or read back (a bad shape, a damaged file)."""


def _in_plane(axis: int) -> tuple[int, int]:
    """The volume axes (z=0, y=1, x=2) that span a view's plane: (rows, columns)."""
    return ((1, 2), (0, 2), (0, 1))[axis]


@dataclass
class Measurement:
    kind: str  # ruler | ellipse | freehand
    axis: int
    index: int
    points: list[Point]
    #: Values when made (length_mm; area_mm2, mean_hu, sd_hu, min_hu, max_hu, n_voxels).
    values: dict[str, float] = field(default_factory=dict)
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["points"] = [list(map(float, p)) for p in self.points]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        try:
            m = cls(kind=str(d["kind"]), axis=int(d["axis"]), index=int(d["index"]),
                    points=[tuple(float(v) for v in p) for p in d["points"]],  # type: ignore[misc]
                    values={str(k): float(v) for k, v in dict(d.get("values", {})).items()},
                    label=str(d.get("label", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise MeasurementError(f"a measurement cannot be read: {exc}") from exc
        if m.kind not in KINDS or m.axis not in (0, 1, 2) or len(m.points) < 2:
            raise MeasurementError(f"a measurement is not valid: {d!r}")
        return m

    def summary(self) -> str:
        v = self.values
        if self.kind == "ruler":
            return f"{v.get('length_mm', 0.0):.1f} mm"
        return (f"{v.get('area_mm2', 0.0):.0f} mm², mean {v.get('mean_hu', 0.0):.0f} HU, "
                f"SD {v.get('sd_hu', 0.0):.0f}, min {v.get('min_hu', 0.0):.0f}, "
                f"max {v.get('max_hu', 0.0):.0f}")


def ruler_length_mm(p0: Sequence[float], p1: Sequence[float], spacing_zyx: Sequence[float]) -> float:
    d = (np.asarray(p1, float) - np.asarray(p0, float)) * np.asarray(spacing_zyx, float)
    return float(np.linalg.norm(d))


def _points_2d(points: Sequence[Point], axis: int) -> np.ndarray:
    r, c = _in_plane(axis)
    return np.asarray([[p[r], p[c]] for p in points], float)


def ellipse_polygon(p0: Point, p1: Point, axis: int, n: int = 64) -> list[Point]:
    """The ellipse inscribed in the box with corners ``p0`` and ``p1`` (same slice), as points."""
    r, c = _in_plane(axis)
    cr, cc = (p0[r] + p1[r]) / 2, (p0[c] + p1[c]) / 2
    ar, ac = abs(p1[r] - p0[r]) / 2, abs(p1[c] - p0[c]) / 2
    out = []
    for t in np.linspace(0, 2 * np.pi, n, endpoint=False):
        p = list(p0)
        p[r], p[c] = cr + ar * np.sin(t), cc + ac * np.cos(t)
        out.append(tuple(float(v) for v in p))
    return out  # type: ignore[return-value]


def polygon_mask(poly_rc: np.ndarray, shape2d: tuple[int, int]) -> np.ndarray:
    """Pixels whose centres lie inside a closed polygon (rows, columns), even-odd rule."""
    rows, cols = shape2d
    mask = np.zeros(shape2d, bool)
    if len(poly_rc) < 3:
        return mask
    r0 = max(int(np.floor(poly_rc[:, 0].min())), 0)
    r1 = min(int(np.ceil(poly_rc[:, 0].max())), rows - 1)
    c0 = max(int(np.floor(poly_rc[:, 1].min())), 0)
    c1 = min(int(np.ceil(poly_rc[:, 1].max())), cols - 1)
    if r1 < r0 or c1 < c0:
        return mask
    rr, cc = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
    inside = np.zeros(rr.shape, bool)
    pr, pc = poly_rc[:, 0], poly_rc[:, 1]
    qr, qc = np.roll(pr, -1), np.roll(pc, -1)
    for ar, ac, br, bc in zip(pr, pc, qr, qc, strict=True):
        if ar == br:
            continue
        crosses = (ar > rr) != (br > rr)
        at = ac + (rr - ar) * (bc - ac) / (br - ar)
        inside ^= crosses & (cc < at)
    mask[r0 : r1 + 1, c0 : c1 + 1] = inside
    return mask


def roi_mask(m: Measurement, shape_zyx: Sequence[int]) -> np.ndarray:
    """The ROI's pixels on its slice (2D, in the slice's index order)."""
    r, c = _in_plane(m.axis)
    shape2d = (int(shape_zyx[r]), int(shape_zyx[c]))
    return polygon_mask(_points_2d(m.points, m.axis), shape2d)


def _plane(arr: np.ndarray, axis: int, index: int) -> np.ndarray:
    sl: list[Any] = [slice(None)] * 3
    sl[axis] = index
    return arr[tuple(sl)]


def compute(m: Measurement, hu: np.ndarray, spacing_zyx: Sequence[float]) -> Measurement:
    """Fill ``m.values`` from the CT (returns ``m``)."""
    if m.kind == "ruler":
        m.values = {"length_mm": ruler_length_mm(m.points[0], m.points[-1], spacing_zyx)}
        return m
    if not 0 <= m.index < hu.shape[m.axis]:
        raise MeasurementError(f"slice {m.index + 1} is outside the scan")
    mask = roi_mask(m, hu.shape)
    vals = _plane(hu, m.axis, m.index)[mask].astype(np.float64)
    r, c = _in_plane(m.axis)
    px = float(spacing_zyx[r]) * float(spacing_zyx[c])
    if vals.size == 0:
        m.values = {"area_mm2": 0.0, "n_voxels": 0.0}
        return m
    m.values = {"area_mm2": vals.size * px, "mean_hu": float(vals.mean()),
                "sd_hu": float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
                "min_hu": float(vals.min()), "max_hu": float(vals.max()), "n_voxels": float(vals.size)}
    return m


def make(kind: str, axis: int, points: Sequence[Sequence[float]], hu: np.ndarray,
         spacing_zyx: Sequence[float]) -> Measurement:
    """A measurement from the mouse's points: ruler (first and last), ellipse (the box's
    corners) or freehand (the path, closed)."""
    if kind not in KINDS:
        raise MeasurementError(f"unknown measurement {kind!r}")
    pts = [tuple(float(v) for v in p) for p in points]
    if len(pts) < 2:
        raise MeasurementError("a measurement needs the mouse dragged, not clicked")
    index = int(round(pts[0][axis]))  # all on the slice where it was drawn
    flat: list[Point] = [(float(index) if axis == 0 else p[0], float(index) if axis == 1 else p[1],
                          float(index) if axis == 2 else p[2]) for p in pts]
    if kind == "ruler":
        flat = [flat[0], flat[-1]]
    elif kind == "ellipse":
        flat = ellipse_polygon(flat[0], flat[-1], axis)
    return compute(Measurement(kind, axis, index, flat), hu, spacing_zyx)


def line_mask(m: Measurement, shape_zyx: Sequence[int]) -> np.ndarray:
    """Pixels on the measurement's drawn line (ruler segment or ROI outline), 2D index order."""
    r, c = _in_plane(m.axis)
    shape2d = (int(shape_zyx[r]), int(shape_zyx[c]))
    out = np.zeros(shape2d, bool)
    pts = _points_2d(m.points, m.axis)
    if m.kind != "ruler":
        pts = np.vstack([pts, pts[:1]])
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        n = int(np.ceil(np.abs(b - a).max() * 2)) + 1
        t = np.linspace(0.0, 1.0, n)[:, None]
        q = np.rint(a + (b - a) * t).astype(int)
        ok = (q[:, 0] >= 0) & (q[:, 0] < shape2d[0]) & (q[:, 1] >= 0) & (q[:, 1] < shape2d[1])
        out[q[ok, 0], q[ok, 1]] = True
    return out


def to_json_obj(items: Sequence[Measurement]) -> dict[str, Any]:
    return {"format": "readerapp-measurements", "format_version": FORMAT_VERSION,
            "measurements": [m.to_dict() for m in items]}


def from_json_obj(obj: Any) -> list[Measurement]:
    if not isinstance(obj, dict) or obj.get("format") != "readerapp-measurements":
        raise MeasurementError("not a ReaderApp measurements file")
    return [Measurement.from_dict(d) for d in obj.get("measurements", [])]
