"""A read's label map and endpoints as DICOM SEG + SR that reference the site's original series.

The study's own export references the de-identified copy the readers saw; a PACS needs objects
that point at the series it holds. This writes them against the original (staged or re-retrieved)
files, reusing the study workflow's SEG/SR writers (which stamp the program's version on both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import PacsError


def write_results(
    source_folder: Path, labels: np.ndarray, endpoints: dict[str, Any], out_dir: Path, *,
    volume: Any = None,
) -> list[Path]:
    """Write ``seg.dcm`` and ``sr.dcm`` into ``out_dir``; returns their paths.

    ``labels`` must lie on the grid of the series in ``source_folder`` (the importer keeps the
    grid, so a read's label map does).
    """
    from ..io.dicom import load_series
    from ..study.dicom_export import load_source_images, write_seg, write_sr

    vol = volume if volume is not None else load_series([source_folder])[0]
    if labels.shape != vol.shape:
        raise PacsError(
            f"label map {labels.shape} does not fit the series in {source_folder} {vol.shape}"
        )
    sources = load_source_images(Path(source_folder))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seg_path, sr_path = out_dir / "seg.dcm", out_dir / "sr.dcm"
    try:
        seg = write_seg(sources, vol, labels, seg_path, software_version=__version__)
        write_sr(sources, seg, endpoints, sr_path)
    except (ValueError, AttributeError, KeyError) as exc:  # highdicom on a header it cannot use
        raise PacsError(f"cannot write DICOM results for {source_folder}: {exc}") from exc
    return [seg_path, sr_path]
