"""Write a :class:`~readerapp.volume.CTVolume` out as a DICOM CT series.

Tests and the benchmark turn synthetic phantoms into DICOM with this, so the loader is checked
against an exactly known answer (HU, spacing, origin, direction) for every transfer syntax an
encoder is installed for, for shuffled file names, for an Enhanced (multi-frame) CT object, and for
deliberately broken series (through the ``edit`` hook, which may change any slice's header).
The files carry fake identifying fields (patient name, ID, dates, institution) on purpose: tests
check that none of them leaks into a loaded volume's ``meta``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

from ..volume import CTVolume

#: Identifying values written into synthetic files; a loaded volume's meta must contain none.
FAKE_IDENTITY = {
    "PatientName": "Phantom^Synthetic",
    "PatientID": "PHANTOM-0001",
    "PatientBirthDate": "19700101",
    "StudyDate": "20260101",
    "SeriesDate": "20260101",
    "InstitutionName": "Synthetic Test Hospital",
    "AccessionNumber": "ACC0001",
}

SliceEdit = Callable[[int, Dataset], None]


def encoder_available(transfer_syntax: str) -> bool:
    """Whether pydicom can encode ``transfer_syntax`` here (uncompressed syntaxes always can)."""
    ts = UID(transfer_syntax)
    if not ts.is_compressed:
        return True
    try:
        from pydicom.pixels import get_encoder

        return bool(get_encoder(ts).is_available)
    except (NotImplementedError, ValueError):
        return False


def _stored_values(hu: np.ndarray, slope: float, intercept: float, signed: bool) -> np.ndarray:
    stored = np.rint((hu.astype(np.float64) - intercept) / slope)
    lo, hi = (-32768, 32767) if signed else (0, 65535)
    if stored.min() < lo or stored.max() > hi:
        raise ValueError(
            f"HU range [{hu.min()}, {hu.max()}] does not fit {'signed' if signed else 'unsigned'} "
            f"16-bit stored values with slope {slope} and intercept {intercept}"
        )
    return stored.astype(np.int16 if signed else np.uint16)


def _base_dataset(
    volume: CTVolume,
    *,
    sop_class: str,
    series_uid: str,
    study_uid: str,
    frame_of_reference_uid: str,
    modality: str,
    slope: float,
    intercept: float,
    signed: bool,
    padding_value: int | None,
    description: str,
) -> Dataset:
    nz, ny, nx = volume.shape
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.Manufacturer = "ReaderApp"
    ds.ManufacturerModelName = "SyntheticPhantom"
    ds.SeriesDescription = description
    for key, value in FAKE_IDENTITY.items():
        setattr(ds, key, value)
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.SeriesNumber = 2
    ds.KVP = "120"
    ds.ConvolutionKernel = "STANDARD"
    ds.Rows, ds.Columns = ny, nx
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    if padding_value is not None:
        ds.add_new(0x00280120, "SS" if signed else "US", int(padding_value))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return ds


def _geometry(volume: CTVolume) -> tuple[list[float], np.ndarray, np.ndarray]:
    d = np.asarray(volume.direction, float).reshape(3, 3)
    iop = [round(float(v), 8) for v in (*d[:, 0], *d[:, 1])]
    sz = volume.spacing[2]
    positions = np.asarray(volume.origin, float)[None, :] + np.arange(volume.shape[0])[:, None] * sz * d[:, 2][None, :]
    return iop, positions, d


def _set_pixels(ds: Dataset, stored: np.ndarray) -> None:
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = np.ascontiguousarray(stored).tobytes()


def _save(ds: Dataset, path: Path, transfer_syntax: UID) -> None:
    if transfer_syntax.is_compressed:
        plugin = "pydicom" if transfer_syntax == "1.2.840.10008.1.2.5" else ""
        ds.compress(transfer_syntax, encoding_plugin=plugin, generate_instance_uid=False)
    else:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.save_as(path, enforce_file_format=True)


def write_synthetic_series(
    volume: CTVolume,
    folder: str | Path,
    transfer_syntax: str = ExplicitVRLittleEndian,
    *,
    shuffle_names: bool = False,
    seed: int = 0,
    series_uid: str | None = None,
    study_uid: str | None = None,
    modality: str = "CT",
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    signed: bool = True,
    padding_value: int | None = None,
    enhanced: bool = False,
    description: str = "Synthetic phantom",
    edit: SliceEdit | None = None,
    slices: Sequence[int] | None = None,
) -> list[Path]:
    """Write ``volume`` as DICOM into ``folder`` and return the files written.

    ``transfer_syntax`` may be any syntax pydicom can encode here (see :func:`encoder_available`;
    RLE Lossless always, JPEG-LS and JPEG 2000 lossless through pyjpegls / pylibjpeg-openjpeg).
    ``padding_value`` (a stored value) replaces voxels equal to ``PADDING_HU`` and is written as
    PixelPaddingValue. ``enhanced`` writes one Enhanced CT multi-frame object instead of one file
    per slice. ``edit(index, dataset)`` is called on each slice before it is saved (tests use it to
    break a series on purpose); ``slices`` writes only those slice indices (to make gaps).
    """
    from ..volume import PADDING_HU

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ts = UID(transfer_syntax)
    if not encoder_available(ts):
        raise ValueError(f"no pydicom encoder is available here for {ts.name}")
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    for_uid = generate_uid()
    hu = volume.hu
    pad = None
    if padding_value is not None:
        pad = hu == PADDING_HU
        hu = np.where(pad, np.int16(round(rescale_intercept)), hu)
    stored = _stored_values(hu, rescale_slope, rescale_intercept, signed)
    if pad is not None:
        stored[pad] = padding_value
    iop, positions, _ = _geometry(volume)
    sx, sy, sz = volume.spacing
    common = dict(
        series_uid=series_uid,
        study_uid=study_uid,
        frame_of_reference_uid=for_uid,
        modality=modality,
        slope=rescale_slope,
        intercept=rescale_intercept,
        signed=signed,
        padding_value=padding_value,
        description=description,
    )
    indices = list(range(volume.shape[0])) if slices is None else list(slices)

    if enhanced:
        ds = _base_dataset(volume, sop_class=EnhancedCTImageStorage, **common)  # type: ignore[arg-type]
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.NumberOfFrames = len(indices)
        shared = Dataset()
        pm = Dataset()
        pm.PixelSpacing = [sy, sx]
        pm.SliceThickness = sz
        shared.PixelMeasuresSequence = DicomSequence([pm])
        po = Dataset()
        po.ImageOrientationPatient = iop
        shared.PlaneOrientationSequence = DicomSequence([po])
        pvt = Dataset()
        pvt.RescaleIntercept = rescale_intercept
        pvt.RescaleSlope = rescale_slope
        pvt.RescaleType = "HU"
        shared.PixelValueTransformationSequence = DicomSequence([pvt])
        ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
        frames = []
        for k in indices:
            item = Dataset()
            pp = Dataset()
            pp.ImagePositionPatient = [round(float(v), 6) for v in positions[k]]
            item.PlanePositionSequence = DicomSequence([pp])
            fc = Dataset()
            fc.InStackPositionNumber = k + 1
            item.FrameContentSequence = DicomSequence([fc])
            frames.append(item)
        ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
        _set_pixels(ds, stored[indices])
        if edit is not None:
            edit(-1, ds)
        path = folder / "enhanced_ct.dcm"
        _save(ds, path, ts)
        return [path]

    names = [f"slice_{i:04d}.dcm" for i in range(len(indices))]
    if shuffle_names:
        random.Random(seed).shuffle(names)
    written = []
    for n, k in enumerate(indices):
        ds = _base_dataset(volume, sop_class=CTImageStorage, **common)  # type: ignore[arg-type]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        # InstanceNumber deliberately runs against the geometry: the loader must not trust it.
        ds.InstanceNumber = volume.shape[0] - k
        ds.ImageOrientationPatient = iop
        ds.ImagePositionPatient = [round(float(v), 6) for v in positions[k]]
        ds.SliceLocation = round(float(positions[k][2]), 6)
        ds.PixelSpacing = [sy, sx]
        ds.SliceThickness = sz
        ds.RescaleIntercept = rescale_intercept
        ds.RescaleSlope = rescale_slope
        ds.RescaleType = "HU"
        _set_pixels(ds, stored[k])
        if edit is not None:
            edit(k, ds)
        path = folder / names[n]
        _save(ds, path, ts)
        written.append(path)
    return written


def benchmark_series_load(
    shape: tuple[int, int, int] = (300, 512, 512),
    transfer_syntax: str = ExplicitVRLittleEndian,
    *,
    repeats: int = 2,
    folder: str | Path | None = None,
) -> dict[str, float]:
    """Write a phantom of ``shape`` as DICOM and time :func:`readerapp.io.dicom.load_series` on it.

    For ``readerapp.bench``: returns seconds for writing and the best of ``repeats`` loads
    (the first load also warms the file cache, as a reader's second look at a case would).
    """
    import tempfile
    import time

    from ..phantom import make_chest_phantom
    from .dicom import load_series

    phantom = make_chest_phantom(shape, spacing=(0.7, 0.7, 1.0), noise_hu=15.0)
    with tempfile.TemporaryDirectory(prefix="readerapp-bench-") as tmp:
        target = Path(folder) if folder is not None else Path(tmp)
        t0 = time.perf_counter()
        write_synthetic_series(phantom.volume, target, transfer_syntax, shuffle_names=True)
        t_write = time.perf_counter() - t0
        times = []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            vol = load_series([target])[0]
            times.append(time.perf_counter() - t0)
        if not np.array_equal(vol.hu, phantom.volume.hu):
            raise AssertionError("benchmark series did not load back to the phantom's HU")
    return {"write_s": t_write, "load_s": min(times), "load_first_s": times[0]}
