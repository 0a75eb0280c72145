"""Slice numbers as the PACS shows them (no Qt: the viewer and the command line share this).

A reader quotes "image 102": that is the DICOM InstanceNumber of the slice, not its position in
the volume (ReaderApp orders slices by position along the slice normal, from the feet, and never
by InstanceNumber). The loader keeps each slice's InstanceNumber in ``volume.meta
["instance_numbers"]`` (z order); when a series has none (or was resampled), captions say so and
fall back to the position counted from the first (inferior) slice.
"""

from __future__ import annotations

from typing import Any


def _stored_numbers(volume: Any) -> Any:
    """The loader's per-slice InstanceNumbers, as stored, or None where absent or partial."""
    nums = (getattr(volume, "meta", None) or {}).get("instance_numbers")
    return nums if nums and len(nums) == volume.shape[0] else None


def instance_numbers(volume: Any) -> list[int] | None:
    nums = _stored_numbers(volume)
    return None if nums is None else [int(n) for n in nums]


def slice_position_mm(volume: Any, z: int) -> float:
    """Patient z (LPS, mm) of axial slice ``z``: what a PACS shows as the slice location."""
    return float(volume.index_to_lps((z, 0, 0))[2])


def slice_thickness_mm(volume: Any) -> float:
    t = (getattr(volume, "meta", None) or {}).get("slice_thickness_mm")
    return float(t) if t else float(volume.spacing[2])


def _mm(v: float) -> str:
    return f"{v:.1f}".replace("-", "\u2212")  # a true minus sign, as PACS consoles print it


def axial_caption(volume: Any, z: int) -> str:
    """"Im 21 · z −123.5 mm · 5.0 mm", or "Slice 44/64 (no image numbers) · …" without them."""
    where = f"z {_mm(slice_position_mm(volume, z))} mm \u00b7 {slice_thickness_mm(volume):.1f} mm"
    nums = _stored_numbers(volume)  # runs per wheel notch: one entry read, no list built
    if nums is None:
        return f"Slice {z + 1}/{volume.shape[0]} (no image numbers) \u00b7 {where}"
    return f"Im {int(nums[z])} \u00b7 {where}"


def index_for_instance(volume: Any, number: int) -> tuple[int, str | None]:
    """The axial slice index of image ``number`` (InstanceNumber), and a note when it had to
    be taken otherwise (no image numbers: position from the first slice; not found: nearest)."""
    nz = volume.shape[0]
    nums = instance_numbers(volume)
    if nums is None:
        z = min(max(number - 1, 0), nz - 1)
        return z, (f"this series has no image numbers (InstanceNumber): slice {number} is taken "
                   "as the position counted from the first (inferior) slice")
    if number in nums:
        return nums.index(number), None
    z = min(range(nz), key=lambda k: abs(nums[k] - number))
    return z, f"there is no image {number} in this series; showing the nearest, image {nums[z]}"


def image_label(volume: Any, z: int) -> str:
    """Short form for the status bar: "Im 21", or "slice 44/64" without image numbers."""
    nums = instance_numbers(volume)
    return f"Im {nums[z]}" if nums is not None else f"slice {z + 1}/{volume.shape[0]}"
