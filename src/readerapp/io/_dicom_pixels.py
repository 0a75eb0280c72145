"""Decoding pixel data and turning stored values into int16 Hounsfield units with padding marked.

Decoding goes through pydicom (pylibjpeg, pyjpegls and openjpeg plugins for compressed syntaxes),
reading only the pixel module and the pixel data from each file. A file that cannot be decoded
raises :class:`SeriesError` naming the file, its transfer syntax and the package that decodes it.
"""

from __future__ import annotations

import numpy as np
from pydicom import dcmread
from pydicom.pixels import get_decoder, pixel_array
from pydicom.uid import UID

from ..errors import SeriesError
from ..labels import PADDING_BELOW_HU
from ..volume import PADDING_HU
from ._dicom_files import DEFLATED, FileHeader

_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg + pylibjpeg-libjpeg (or pillow)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg + pylibjpeg-libjpeg (or pillow)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg + pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg + pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg + pylibjpeg-libjpeg, or pyjpegls",
    "1.2.840.10008.1.2.4.81": "pylibjpeg + pylibjpeg-libjpeg, or pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg + pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg + pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg + pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg + pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg + pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg + pylibjpeg-rle (or pydicom's own RLE decoder)",
}


def ts_label(ts: str) -> str:
    if not ts:
        return "no transfer syntax in the file meta"
    uid = UID(ts)
    return f"{uid.name} ({ts})" if uid.name != ts else ts


def decode_error(header: FileHeader, exc: BaseException) -> SeriesError:
    """A refusal naming the file, the transfer syntax, and which package would decode it."""
    ts = header.transfer_syntax
    package = _PACKAGES.get(ts, "")
    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}" if str(exc) else type(exc).__name__
    try:
        decoder = get_decoder(UID(ts)) if ts else None
    except NotImplementedError:
        decoder = None
        hint = ("pydicom has no decoder for this transfer syntax; convert the files to uncompressed "
                "DICOM (for example with `gdcmconv --raw` or dcmtk's `dcmdjpeg`)")
    else:
        if decoder is None:
            hint = "the file meta has no transfer syntax; re-export the file"
        elif not decoder.is_available:
            hint = f"no decoder is installed for it: install {package or 'a pydicom decoding plugin'}"
        else:
            hint = (f"the decoders installed ({package or 'pydicom'}) failed, so the pixel data is "
                    "probably damaged or truncated; re-export the file")
    return SeriesError(f"{header.name}: cannot decode the pixel data ({ts_label(ts)}): {reason}. {hint}")


#: Faster plugins where several are installed (CharLS decodes JPEG-LS about 3x faster).
_PREFERRED_PLUGIN = {"1.2.840.10008.1.2.4.80": "pyjpegls", "1.2.840.10008.1.2.4.81": "pyjpegls"}


def _plugin_for(ts: str) -> str:
    plugin = _PREFERRED_PLUGIN.get(ts, "")
    if not plugin:
        return ""
    try:
        return plugin if plugin in get_decoder(UID(ts)).available_plugins else ""
    except Exception:
        return ""


def decode_file(header: FileHeader) -> np.ndarray:
    """All frames of one file as (frames, rows, columns) stored values (before rescale)."""
    try:
        with header.source.open() as fh:
            if header.transfer_syntax == DEFLATED:
                arr = dcmread(fh).pixel_array
            else:
                try:
                    arr = pixel_array(fh, decoding_plugin=_plugin_for(header.transfer_syntax))
                except Exception:
                    # The minimal reader trips on some odd headers that a full read handles.
                    fh.seek(0)
                    arr = dcmread(fh).pixel_array
    except SeriesError:
        raise
    except Exception as exc:
        raise decode_error(header, exc) from exc
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape != (header.n_frames, header.rows, header.columns):
        raise SeriesError(
            f"{header.name}: the decoded pixel data has shape {arr.shape}, but the header declares "
            f"{header.n_frames} frame(s) of {header.rows}x{header.columns}; the file is damaged, re-export it"
        )
    return arr


def padding_mask(raw: np.ndarray, value: int | None, limit: int | None) -> np.ndarray | None:
    """Voxels equal to PixelPaddingValue (or within PixelPaddingRangeLimit), on stored values."""
    if value is None:
        return None
    if limit is None:
        return raw == value
    lo, hi = min(value, limit), max(value, limit)
    return (raw >= lo) & (raw <= hi)


def to_hu(
    raw: np.ndarray,
    out: np.ndarray,
    slope: float,
    intercept: float,
    pad_value: int | None = None,
    pad_limit: int | None = None,
) -> int:
    """Write HU of one slice into ``out`` (int16), padding set to PADDING_HU; return the padding count.

    Padding is PixelPaddingValue (and its range) on stored values, plus anything below
    ``PADDING_BELOW_HU`` after rescale (for example -2048 or -3024 outside the field of view), so
    it can never be counted as air or lung. Values beyond int16 are clipped.
    """
    mask = padding_mask(raw, pad_value, pad_limit)
    if slope == 1.0 and float(intercept).is_integer():
        hu = raw.astype(np.int32)
        hu += int(intercept)
    else:
        hu = np.rint(raw.astype(np.float64) * slope + intercept)
    below = hu < PADDING_BELOW_HU
    mask = below if mask is None else (mask | below)
    np.clip(hu, -32768, 32767, out=hu)
    out[...] = hu
    out[mask] = PADDING_HU
    return int(np.count_nonzero(mask))
