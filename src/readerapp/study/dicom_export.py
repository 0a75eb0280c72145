"""DICOM outputs of a final read: a SEG of the label map and a TID 1500 measurement report (SR).

Both reference the de-identified source series the readers saw, so a PACS or viewer pairs them
with the images. Every segment and measurement is coded from :mod:`readerapp.endpoints` (the one
catalogue), with standard codes (SNOMED CT, DCM, UCUM). Endpoints that no standard names (the
lesion weights and mass) carry the private scheme ``99RDRAPP`` and are left out of the SR unless
asked for: validators such as dicom3tools' ``dciodvfy`` warn about any private scheme. A value
that is null (a percentage of a zero lung volume) is never written as a number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .. import endpoints as catalogue
from ..endpoints import PRIVATE_SCHEME, Code, Endpoint
from ..labels import Label

__all__ = ["PRIVATE_SCHEME", "SEGMENTS", "load_source_images", "sr_measurements", "write_seg", "write_sr"]


def _cc(code: Code):  # type: ignore[no-untyped-def]
    from highdicom.sr import CodedConcept

    return CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning)


#: The SEG's segments: (label, segment label, property category, property type), CID 7150.
SEGMENTS: tuple[tuple[Label, str, Code, Code], ...] = (
    (Label.LUNG, "lung", catalogue.ANATOMICAL_STRUCTURE, catalogue.LUNG),
    (Label.GGO, "ground glass", catalogue.MORPHOLOGICALLY_ABNORMAL_STRUCTURE, catalogue.GROUND_GLASS_OPACITY),
    (Label.CONSOLIDATION, "consolidation", catalogue.MORPHOLOGICALLY_ABNORMAL_STRUCTURE, catalogue.CONSOLIDATION),
)


#: The procedure reported: LOINC 24627-2 "CT Chest" (CID 100, Quantitative Diagnostic Imaging
#: Procedures; pydicom's dictionary lists the same code as ``codes.LN.CTChestReport``).
CT_CHEST = Code("24627-2", "LN", "CT Chest")

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

    if len(sources) != volume.shape[0] or "NumberOfFrames" in sources[0]:
        raise ValueError("DICOM SEG export needs a single-frame series with one file per slice")
    idx = _frame_indices(sources, volume)
    if sorted(idx) != list(range(volume.shape[0])):
        raise ValueError("the source files do not map one-to-one onto the volume's slices")
    pixel = np.stack([labels[z] for z in idx]).astype(np.uint8)
    descriptions = [
        hd.seg.SegmentDescription(int(label), name, _cc(category), _cc(kind),
                                  hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for label, name, category, kind in SEGMENTS
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


def sr_measurements(endpoints: dict[str, Any], *, include_private: bool = False
                    ) -> dict[Code, list[tuple[Endpoint, float]]]:
    """The scalar endpoints the SR carries, grouped by finding (lung, GGO, consolidation, lesion):
    every catalogue entry with a value, in catalogue order. A null value is left out (never
    written as a number); an entry coded in the private scheme only with ``include_private``."""
    out: dict[Code, list[tuple[Endpoint, float]]] = {}
    for e in catalogue.CATALOGUE:
        if not e.scalar or e.concept is None or e.unit is None:
            continue
        if not e.concept.standard and not include_private:
            continue
        v = endpoints.get(e.key)
        if not catalogue.is_finite_number(v):
            continue
        out.setdefault(e.finding, []).append((e, float(v)))  # type: ignore[arg-type]
    return out


def write_sr(sources: list[Any], seg: Any, endpoints: dict[str, Any], path: Path, *,
             title: str = "Chest CT densitometry", series_number: int = 301,
             software_version: str = __version__, include_private: bool = False) -> Any:
    """Write the endpoints as a TID 1500 measurement report referencing the SEG's segments.

    Like the SEG, the report carries the program's version in SoftwareVersions. Lung, ground
    glass and consolidation are volumetric groups referencing their segment; the lesion (both
    together) has no segment of its own and is a plain measurement group with the lung as its
    finding site."""
    import highdicom as hd
    from highdicom import sr
    from pydicom.sr.codedict import codes

    src_series = sr.SourceSeriesForSegmentation(sources[0].SeriesInstanceUID)
    segment_of = {kind: int(label) for label, _, _, kind in SEGMENTS}
    names = {kind: name for _, name, _, kind in SEGMENTS}

    def items(found: list[tuple[Endpoint, float]]) -> list[Any]:
        return [
            sr.Measurement(
                name=_cc(e.concept),  # type: ignore[arg-type]
                value=v,
                unit=_cc(e.unit.code),  # type: ignore[union-attr]
                method=_cc(e.method) if e.method else None,
                derivation=_cc(e.derivation) if e.derivation else None,
            )
            for e, v in found
        ]

    groups: list[Any] = []
    grouped = sr_measurements(endpoints, include_private=include_private)
    for finding in sorted(grouped, key=lambda f: (f not in segment_of, segment_of.get(f, 0))):
        found = grouped[finding]
        if finding in segment_of:
            groups.append(sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=sr.TrackingIdentifier(uid=hd.UID(), identifier=names[finding]),
                referenced_segment=sr.ReferencedSegment(
                    sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
                    segment_number=segment_of[finding], source_series=src_series),
                finding_type=_cc(finding),
                finding_sites=[sr.FindingSite(_cc(catalogue.LUNG))] if finding != catalogue.LUNG else None,
                measurements=items(found),
            ))
        else:
            groups.append(sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=sr.TrackingIdentifier(uid=hd.UID(), identifier="lesion"),
                finding_type=_cc(finding),
                finding_sites=[sr.FindingSite(_cc(catalogue.LUNG))],
                measurements=items(found),
            ))
    observer = sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=sr.DeviceObserverIdentifyingAttributes(uid=hd.UID(), name="ReaderApp"),
    )
    report = sr.MeasurementReport(
        observation_context=sr.ObservationContext(observer_device_context=observer),
        procedure_reported=_cc(CT_CHEST),
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
