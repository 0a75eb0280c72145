"""Finding DICOM files (folders, file lists, zip archives) and reading each header exactly once.

Zip archives are read member by member in memory; nothing is extracted into the user's folders.
Each header becomes a :class:`FileHeader` holding only what loading needs, with its frames'
geometry (from the top level, or from the functional groups of an Enhanced multi-frame object);
values that cannot be parsed are recorded as ``problems`` rather than raised, so one bad file
never turns into a traceback.
"""

from __future__ import annotations

import io
import threading
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ..errors import SeriesError

#: Tags of (7FE0,0010) Pixel Data and its float variants, as their first 4 bytes on disk.
_PIXEL_TAGS_LE = {b"\xe0\x7f\x10\x00", b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00"}
_PIXEL_TAGS_BE = {b"\x7f\xe0\x00\x10", b"\x7f\xe0\x00\x08", b"\x7f\xe0\x00\x09"}
DEFLATED = "1.2.840.10008.1.2.1.99"


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings about odd values: problems are reported in our own words."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"pydicom(\..*)?")
        warnings.filterwarnings("ignore", category=UserWarning, message=".*Invalid value.*")
        yield


class Archive:
    """A zip archive whose members are read on demand (thread-safe, never extracted)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zf: zipfile.ZipFile | None = None
        self._lock = threading.Lock()

    def members(self) -> list[str]:
        with self._lock:
            zf = self._open()
            return [i.filename for i in zf.infolist() if not i.is_dir()]

    def _open(self) -> zipfile.ZipFile:
        if self._zf is None:
            self._zf = zipfile.ZipFile(self.path)
        return self._zf

    def read(self, member: str) -> bytes:
        with self._lock:
            return self._open().read(member)

    def close(self) -> None:
        with self._lock:
            if self._zf is not None:
                self._zf.close()
                self._zf = None


@dataclass(frozen=True)
class Source:
    """One file on disk or one member of a zip archive; ``name`` is what messages show."""

    name: str
    path: Path | None = None
    archive: Archive | None = None
    member: str | None = None

    def open(self) -> BinaryIO:
        if self.path is not None:
            return self.path.open("rb")
        assert self.archive is not None and self.member is not None
        return io.BytesIO(self.archive.read(self.member))

    @property
    def folder(self) -> str:
        if self.path is not None:
            return str(self.path.parent)
        return f"{self.name.rsplit('/', 1)[0]}"


@dataclass
class FrameGeometry:
    """Where one frame (one slice) lies and how its stored values become HU."""

    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    #: (row spacing, column spacing) in mm, as DICOM's PixelSpacing.
    pixel_spacing: tuple[float, float] | None
    slope: float | None
    intercept: float | None
    thickness: float | None
    #: InstanceNumber (the image number a PACS shows); display only, never used for geometry.
    instance_number: int | None = None


@dataclass
class FileHeader:
    source: Source
    transfer_syntax: str
    sop_class: str
    modality: str
    series_uid: str
    study_uid: str
    frame_of_reference: str
    series_number: str
    series_description: str
    image_type: tuple[str, ...]
    rows: int | None
    columns: int | None
    n_frames: int
    samples_per_pixel: int
    has_pixels: bool | None
    enhanced: bool
    frames: list[FrameGeometry]
    padding_value: int | None = None
    padding_limit: int | None = None
    spacing_between_slices: float | None = None
    rescale_type: str = ""
    lossy: bool = False
    #: Non-identifying acquisition description copied into the volume's meta.
    meta: dict[str, Any] = field(default_factory=dict)
    #: Values that were present but unusable, in words ("NumberOfFrames '1A' is not a number").
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def is_localizer(self) -> bool:
        return "LOCALIZER" in self.image_type


@dataclass
class Skipped:
    source: Source
    reason: str


# --------------------------------------------------------------------------- finding files


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[Source], list[Archive]]:
    """Every candidate file under ``inputs`` (folders recursively, zip archives member by member)."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    sources: list[Source] = []
    archives: list[Archive] = []
    if not inputs:
        raise SeriesError("no input given: name a DICOM folder, files or a .zip archive")
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise SeriesError(f"{p}: no such file or folder")
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            if f.name.startswith(".") or f.name.upper() == "DICOMDIR":
                continue
            if f.suffix.lower() == ".zip" and zipfile.is_zipfile(f):
                arc = Archive(f)
                archives.append(arc)
                try:
                    members = arc.members()
                except (zipfile.BadZipFile, OSError) as exc:
                    raise SeriesError(f"{f}: cannot read the zip archive ({exc})") from exc
                for m in sorted(members):
                    base = m.rsplit("/", 1)[-1]
                    if base.startswith(".") or base.upper() == "DICOMDIR" or m.startswith("__MACOSX/"):
                        continue
                    sources.append(Source(name=f"{f}:{m}", archive=arc, member=m))
            else:
                sources.append(Source(name=str(f), path=f))
    return sources, archives


# --------------------------------------------------------------------------- reading headers


def _get(ds: Dataset, keyword: str, problems: list[str], default: Any = None) -> Any:
    try:
        value = ds.get(keyword, default)
    except Exception as exc:  # pydicom converts values lazily; bad ones raise here
        problems.append(f"{keyword} cannot be read ({exc})")
        return default
    return default if value is None or value == "" else value


def _floats(value: Any, n: int, keyword: str, problems: list[str]) -> tuple[float, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") else list(value)
    try:
        vals = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        problems.append(f"{keyword} {value!r} is not numeric")
        return None
    if len(vals) != n:
        problems.append(f"{keyword} has {len(vals)} values, expected {n}")
        return None
    return vals


def _float(value: Any, keyword: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        problems.append(f"{keyword} {value!r} is not a number")
        return None


def _int(value: Any, keyword: str, problems: list[str], default: int | None = None) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        problems.append(f"{keyword} {value!r} is not a whole number")
        return default


def _item(seq_owner: Dataset | None, keyword: str) -> Dataset | None:
    if seq_owner is None:
        return None
    seq = seq_owner.get(keyword)
    if seq:
        return seq[0]
    return None


def _geometry(src: Dataset, problems: list[str]) -> FrameGeometry:
    return FrameGeometry(
        position=_floats(_get(src, "ImagePositionPatient", problems), 3, "ImagePositionPatient", problems),  # type: ignore[arg-type]
        orientation=_floats(_get(src, "ImageOrientationPatient", problems), 6, "ImageOrientationPatient", problems),
        pixel_spacing=_floats(_get(src, "PixelSpacing", problems), 2, "PixelSpacing", problems),  # type: ignore[arg-type]
        slope=_float(_get(src, "RescaleSlope", problems), "RescaleSlope", problems),
        intercept=_float(_get(src, "RescaleIntercept", problems), "RescaleIntercept", problems),
        thickness=_float(_get(src, "SliceThickness", problems), "SliceThickness", problems),
        instance_number=_int(src.get("InstanceNumber"), "InstanceNumber", []),
    )


def _enhanced_frames(ds: Dataset, n_frames: int, problems: list[str]) -> list[FrameGeometry]:
    """Per-frame geometry from the functional groups (per-frame first, then shared, then top level)."""
    top = _geometry(ds, [])
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) != n_frames:
        problems.append(
            f"PerFrameFunctionalGroupsSequence has {len(per_frame)} items for {n_frames} frames"
        )
    frames = []
    for i in range(n_frames):
        pf = per_frame[i] if i < len(per_frame) else None
        geo = FrameGeometry(None, None, None, None, None, None)
        for owner in (pf, shared):
            if owner is None:
                continue
            g_pos = _item(owner, "PlanePositionSequence")
            g_ori = _item(owner, "PlaneOrientationSequence")
            g_pm = _item(owner, "PixelMeasuresSequence")
            g_pvt = _item(owner, "PixelValueTransformationSequence")
            part = FrameGeometry(
                position=_geometry(g_pos, problems).position if g_pos is not None else None,
                orientation=_geometry(g_ori, problems).orientation if g_ori is not None else None,
                pixel_spacing=_geometry(g_pm, problems).pixel_spacing if g_pm is not None else None,
                slope=_geometry(g_pvt, problems).slope if g_pvt is not None else None,
                intercept=_geometry(g_pvt, problems).intercept if g_pvt is not None else None,
                thickness=_geometry(g_pm, problems).thickness if g_pm is not None else None,
            )
            for attr in ("position", "orientation", "pixel_spacing", "slope", "intercept", "thickness"):
                if getattr(geo, attr) is None:
                    setattr(geo, attr, getattr(part, attr))
        for attr in ("position", "orientation", "pixel_spacing", "slope", "intercept", "thickness"):
            if getattr(geo, attr) is None:
                setattr(geo, attr, getattr(top, attr))
        frames.append(geo)
    return frames


def _first_float(value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
        value = next(iter(value), None)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _meta(ds: Dataset) -> dict[str, Any]:
    problems: list[str] = []
    kernel = _get(ds, "ConvolutionKernel", problems)
    if kernel is not None and not isinstance(kernel, str):
        kernel = "\\".join(str(k) for k in kernel)
    meta: dict[str, Any] = {
        "manufacturer": _get(ds, "Manufacturer", problems),
        "model": _get(ds, "ManufacturerModelName", problems),
        "kernel": kernel,
        "kvp": _float(_get(ds, "KVP", problems), "KVP", problems),
        # The scan's own display window (first of several values), offered as a preset.
        "window_center": _first_float(ds.get("WindowCenter")),
        "window_width": _first_float(ds.get("WindowWidth")),
    }
    return {k: (str(v) if isinstance(v, str) or hasattr(v, "original_string") else v) for k, v in meta.items()}


def header_from_dataset(ds: Dataset, source: Source, has_pixels: bool | None) -> FileHeader:
    """The fields loading needs, parsed defensively (bad values become ``problems``)."""
    problems: list[str] = []
    fm = getattr(ds, "file_meta", None)
    ts = str(fm.get("TransferSyntaxUID", "") if fm is not None else "") or ""
    n_frames = _int(_get(ds, "NumberOfFrames", problems), "NumberOfFrames", problems, 1) or 1
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    try:
        frames = _enhanced_frames(ds, n_frames, problems) if enhanced else [_geometry(ds, problems)] * n_frames
    except Exception as exc:  # a damaged sequence
        problems.append(f"the functional groups cannot be read ({exc})")
        frames = [FrameGeometry(None, None, None, None, None, None)] * n_frames
    if n_frames > 1 and not enhanced:
        problems.append(f"it has {n_frames} frames but no per-frame positions (functional groups)")
    signed = _int(_get(ds, "PixelRepresentation", problems), "PixelRepresentation", problems, 0) == 1
    image_type = _get(ds, "ImageType", problems, ())
    if isinstance(image_type, str):
        image_type = (image_type,)
    lossy = str(_get(ds, "LossyImageCompression", problems, "")).strip() == "01"
    return FileHeader(
        source=source,
        transfer_syntax=ts,
        sop_class=str(_get(ds, "SOPClassUID", problems, "")),
        modality=str(_get(ds, "Modality", problems, "")).strip().upper(),
        series_uid=str(_get(ds, "SeriesInstanceUID", problems, "")).strip(),
        study_uid=str(_get(ds, "StudyInstanceUID", problems, "")).strip(),
        frame_of_reference=str(_get(ds, "FrameOfReferenceUID", problems, "")).strip(),
        series_number=str(_get(ds, "SeriesNumber", problems, "")),
        series_description=str(_get(ds, "SeriesDescription", problems, ""))[:64],
        image_type=tuple(str(t).upper() for t in image_type),
        rows=_int(_get(ds, "Rows", problems), "Rows", problems),
        columns=_int(_get(ds, "Columns", problems), "Columns", problems),
        n_frames=n_frames,
        samples_per_pixel=_int(_get(ds, "SamplesPerPixel", problems), "SamplesPerPixel", problems, 1) or 1,
        has_pixels=has_pixels,
        enhanced=enhanced,
        frames=frames,
        padding_value=_as_stored(_int(_get(ds, "PixelPaddingValue", problems), "PixelPaddingValue", problems), signed),
        padding_limit=_as_stored(
            _int(_get(ds, "PixelPaddingRangeLimit", problems), "PixelPaddingRangeLimit", problems), signed
        ),
        spacing_between_slices=_float(_get(ds, "SpacingBetweenSlices", problems), "SpacingBetweenSlices", problems),
        rescale_type=str(_get(ds, "RescaleType", problems, "") or _first_rescale_type(ds)).strip().upper(),
        lossy=lossy,
        meta=_meta(ds),
        problems=problems,
    )


def _as_stored(value: int | None, signed: bool) -> int | None:
    """A padding value as the decoded pixels hold it (an implicit-VR file may give -2000 as 63536)."""
    if value is None:
        return None
    if signed and value >= 2**15:
        return value - 2**16
    if not signed and value < 0:
        return value + 2**16
    return value


def _first_rescale_type(ds: Dataset) -> str:
    try:
        for owner in (_item(ds, "SharedFunctionalGroupsSequence"), _item(ds, "PerFrameFunctionalGroupsSequence")):
            pvt = _item(owner, "PixelValueTransformationSequence")
            if pvt is not None and pvt.get("RescaleType"):
                return str(pvt.RescaleType)
    except Exception:
        return ""
    return ""


def read_header(source: Source) -> FileHeader | Skipped:
    """Parse one file's header (pixel data is not read); non-DICOM files become :class:`Skipped`."""
    try:
        with source.open() as fh:
            ds = dcmread(fh, stop_before_pixels=True)
            ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
            if ts == DEFLATED:
                has_pixels: bool | None = None
            else:
                tag = fh.read(4)
                has_pixels = tag in _PIXEL_TAGS_LE or tag in _PIXEL_TAGS_BE
    except InvalidDicomError:
        return Skipped(source, "not a DICOM file (no 'DICM' file header)")
    except OSError as exc:
        return Skipped(source, f"cannot be read ({exc.strerror or exc})")
    except Exception as exc:
        return Skipped(source, f"damaged DICOM header ({type(exc).__name__}: {str(exc)[:120]})")
    if ts == DEFLATED:
        try:
            with source.open() as fh:
                has_pixels = "PixelData" in dcmread(fh)
        except Exception:
            has_pixels = False
    try:
        return header_from_dataset(ds, source, has_pixels)
    except Exception as exc:  # belt and braces: never a raw exception from a header
        return Skipped(source, f"damaged DICOM header ({type(exc).__name__}: {str(exc)[:120]})")


def read_headers(sources: Sequence[Source], progress: Any = None, workers: int = 4) -> list[FileHeader | Skipped]:
    """All headers, in the order of ``sources`` (threads overlap the file reads)."""
    out: list[FileHeader | Skipped] = []
    with quiet_pydicom(), ThreadPoolExecutor(max_workers=workers) as ex:
        for i, h in enumerate(ex.map(read_header, sources, chunksize=16) if len(sources) > 32 else map(read_header, sources)):
            out.append(h)
            if progress is not None and (i % 32 == 0 or i == len(sources) - 1):
                progress((i + 1) / max(len(sources), 1), f"reading DICOM headers ({i + 1}/{len(sources)})")
    return out
