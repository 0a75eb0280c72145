"""DICOM outputs of a final read: a SEG of the label map and a TID 1500 measurement report (SR).

Both reference the de-identified source series the readers saw, so a PACS or viewer pairs them
with the images. Lung is coded with SNOMED CT; ground glass, consolidation and the protocol's
endpoints have no standard codes we could verify, so they use the private coding scheme
``99RDRAPP`` (declared in the objects, as DICOM allows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__

PRIVATE_SCHEME = "99RDRAPP"


def _cc(value: str, meaning: str, scheme: str = PRIVATE_SCHEME):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


#: Type 2 attributes (present, may be empty) that highdicom copies from the source images into the
#: SEG and SR; some scanners and PACS omit them, which highdicom does not tolerate.
_TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                 "ReferringPhysicianName", "AccessionNumber", "StudyID")


def load_source_images(folder: Path) -> list[Any]:
    """The series' files as datasets, with absent type 2 patient/study attributes added empty
    (in memory only), so a SEG and SR can be written for any conforming-enough series."""
    import pydicom

    out = []
    for p in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(p)
        for kw in _TYPE2_COPIED:
            if kw not in ds:
                setattr(ds, kw, "")
        out.append(ds)
    return out


def _frame_indices(sources: list[Any], volume) -> list[int]:
    """The volume slice (z index) of each source image, from its position along the normal."""
    d = np.asarray(volume.direction, float).reshape(3, 3)
    normal = d[:, 2]
    origin = np.asarray(volume.origin, float)
    sz = volume.spacing[2]
    out = []
    for ds in sources:
        pos = np.asarray([float(v) for v in ds.ImagePositionPatient])
        out.append(int(round(float((pos - origin) @ normal) / sz)))
    return out


def write_seg(sources: list[Any], volume, labels: np.ndarray, path: Path, *, series_number: int = 300,
              software_version: str = __version__) -> Any:
    """Write the label map (1 lung, 2 ground glass, 3 consolidation) as a binary DICOM SEG.

    SoftwareVersions carries the program's version (every output does, so a result can be traced
    to the code that made it)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if len(sources) != volume.shape[0] or "NumberOfFrames" in sources[0]:
        raise ValueError("DICOM SEG export needs a single-frame series with one file per slice")
    idx = _frame_indices(sources, volume)
    if sorted(idx) != list(range(volume.shape[0])):
        raise ValueError("the source files do not map one-to-one onto the volume's slices")
    pixel = np.stack([labels[z] for z in idx]).astype(np.uint8)
    category = codes.SCT.MorphologicallyAbnormalStructure
    descriptions = [
        hd.seg.SegmentDescription(1, "lung", codes.SCT.Tissue, codes.SCT.Lung,
                                  hd.seg.SegmentAlgorithmTypeValues.MANUAL),
        hd.seg.SegmentDescription(2, "ground glass", category, _cc("GGO", "Ground-glass opacity"),
                                  hd.seg.SegmentAlgorithmTypeValues.MANUAL),
        hd.seg.SegmentDescription(3, "consolidation", category, _cc("CONS", "Consolidation"),
                                  hd.seg.SegmentAlgorithmTypeValues.MANUAL),
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixel,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="ReaderApp",
        manufacturer_model_name="ReaderApp",
        software_versions=software_version or __version__,
        device_serial_number="0",
        omit_empty_frames=False,
    )
    seg.save_as(path)
    return seg


def write_sr(sources: list[Any], seg: Any, endpoints: dict[str, Any], path: Path, *,
             title: str = "Chest CT densitometry", series_number: int = 301,
             software_version: str = __version__) -> Any:
    """Write the endpoints as a TID 1500 measurement report referencing the SEG's segments.

    Like the SEG, the report carries the program's version in SoftwareVersions."""
    import highdicom as hd
    from highdicom import sr
    from pydicom.sr.codedict import codes

    ml = _cc("mL", "milliliter", "UCUM")
    pct = _cc("%", "percent", "UCUM")
    hu = _cc("[hnsf'U]", "Hounsfield unit", "UCUM")
    grams = _cc("g", "gram", "UCUM")
    src_series = sr.SourceSeriesForSegmentation(sources[0].SeriesInstanceUID)

    def meas(key: str, meaning: str, unit) -> list[Any]:
        v = endpoints.get(key)
        if v is None:
            return []
        return [sr.Measurement(name=_cc(key, meaning), value=float(v), unit=unit)]

    def group(number: int, label: str, finding, items: list[Any]) -> Any:
        return sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=sr.TrackingIdentifier(uid=hd.UID(), identifier=label),
            referenced_segment=sr.ReferencedSegment(
                sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
                segment_number=number, source_series=src_series),
            finding_type=finding,
            measurements=items,
        )

    groups = [
        group(1, "lung", codes.SCT.Lung,
              [sr.Measurement(name=codes.SCT.Volume, value=float(endpoints["lung_volume_ml"]), unit=ml)]
              + meas("mean_lung_hu", "Mean lung attenuation", hu)),
        group(2, "ground glass", _cc("GGO", "Ground-glass opacity"),
              [sr.Measurement(name=codes.SCT.Volume, value=float(endpoints["ggo_volume_ml"]), unit=ml)]
              + meas("ggo_pct", "Ground-glass percent of lung volume", pct)),
        group(3, "consolidation", _cc("CONS", "Consolidation"),
              [sr.Measurement(name=codes.SCT.Volume, value=float(endpoints["consolidation_volume_ml"]), unit=ml)]
              + meas("consolidation_pct", "Consolidation percent of lung volume", pct)),
        sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=sr.TrackingIdentifier(uid=hd.UID(), identifier="lesion"),
            finding_type=_cc("LESION", "Lesion (ground glass and consolidation)"),
            measurements=meas("lesion_volume_ml", "Lesion volume", ml)
            + meas("lesion_pct", "Lesion percent of lung volume", pct)
            + meas("lesion_mass_g", "Lesion tissue-equivalent mass", grams)
            + meas("lesion_weight_hu_ml", "Lesion weight (HU x mL)", _cc("[hnsf'U].mL", "HU x milliliter", "UCUM")),
        ),
    ]
    observer = sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=sr.DeviceObserverIdentifyingAttributes(uid=hd.UID(), name="ReaderApp"),
    )
    report = sr.MeasurementReport(
        observation_context=sr.ObservationContext(observer_device_context=observer),
        procedure_reported=_cc("24627-2", "CT Chest", "LN"),
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    doc = sr.Comprehensive3DSR(
        evidence=[*sources, seg],
        content=report,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="ReaderApp",
        manufacturer_model_name="ReaderApp",
        software_versions=software_version or __version__,
        is_complete=True,
        is_final=True,
    )
    doc.save_as(path)
    return doc
