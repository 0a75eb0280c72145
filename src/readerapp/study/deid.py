"""De-identification of CT files for blinded reading (DICOM PS3.15 Annex E, basic profile).

We keep an allow-list of the attributes a reader and the measurement need (image pixels, geometry,
rescale, technique) and drop everything else, which removes every attribute the basic profile
removes and more (private tags, descriptions, free text, dates, institution, devices, people).
What must exist is replaced: patient name and ID become the case code; study date, time, ID and
accession number become empty; instance UIDs are remapped consistently (the same original UID maps
to the same new UID, keyed by a per-study secret), so a series stays one series and SEG/SR objects
can reference it. Nested sequences kept for Enhanced CT are cleaned recursively (no dates, names or
free text; UIDs remapped).
"""

from __future__ import annotations

import copy
import hashlib

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

#: Top-level attributes kept as they are (everything else is removed).
KEEP = frozenset(
    ["SpecificCharacterSet", "ImageType", "SOPClassUID", "Modality", "Manufacturer", "ManufacturerModelName", "SliceThickness", "SpacingBetweenSlices", "KVP", "DataCollectionDiameter", "ReconstructionDiameter", "GantryDetectorTilt", "TableHeight", "RotationDirection", "ExposureTime", "XRayTubeCurrent", "Exposure", "FilterType", "GeneratorPower", "FocalSpots", "ConvolutionKernel", "PatientPosition", "BodyPartExamined", "RevolutionTime", "SingleCollimationWidth", "TotalCollimationWidth", "TableSpeed", "TableFeedPerRotation", "SpiralPitchFactor", "CTDIvol", "ScanOptions", "ContrastBolusAgent", "SeriesNumber", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient", "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames", "Rows", "Columns", "PixelSpacing", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PlanarConfiguration", "PixelPaddingValue", "PixelPaddingRangeLimit", "SmallestImagePixelValue", "LargestImagePixelValue", "WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope", "RescaleType", "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod", "PresentationLUTShape", "BurnedInAnnotation", "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "DimensionIndexSequence", "DimensionOrganizationSequence", "DimensionOrganizationType", "ContentQualification", "AcquisitionContextSequence", "PixelData", "FloatPixelData", "DoubleFloatPixelData"]
)

#: Attributes whose UIDs are instance identifiers and get remapped (all other kept UIDs are
#: well-known class or syntax UIDs).
_NOT_REMAPPED = frozenset({"SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID",
                           "TransferSyntaxUID", "ImplementationClassUID", "CodingSchemeUID"})

#: VRs never kept inside sequences: they carry names, dates and free text.
_DROP_VRS_NESTED = frozenset({"PN", "DA", "DT", "TM", "LO", "LT", "SH", "ST", "UT", "UC", "AE", "UR"})

#: DeidentificationMethod (LO, at most 64 characters).
METHOD = "ReaderApp allow-list; PS3.15 basic profile"


class UidMapper:
    """Consistent remapping: the same original UID always gives the same new UID for a study."""

    def __init__(self, secret: str):
        self._secret = secret
        self._cache: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        uid = str(uid)
        new = self._cache.get(uid)
        if new is None:
            # A 2.25 (UUID-style) UID from 128 bits of SHA-256(secret, original): stable, unguessable.
            digest = hashlib.sha256(f"{self._secret}\0{uid}".encode()).digest()[:16]
            new = "2.25." + str(int.from_bytes(digest, "big"))
            self._cache[uid] = new
        return new


def _clean_nested(ds: Dataset, uids: UidMapper) -> None:
    for elem in list(ds):
        if elem.tag.is_private or elem.VR in _DROP_VRS_NESTED:
            del ds[elem.tag]
        elif elem.VR == "SQ":
            for item in elem.value:
                _clean_nested(item, uids)
        elif elem.VR == "UI" and elem.keyword not in _NOT_REMAPPED and elem.value:
            elem.value = (
                [uids(v) for v in elem.value] if elem.VM > 1 else uids(elem.value)
            )


def deidentify(ds: Dataset, case_code: str, uids: UidMapper) -> Dataset:
    """Return a new, de-identified dataset (the input is not changed)."""
    out = Dataset()
    for elem in ds:
        if elem.keyword in KEEP and not elem.tag.is_private:
            out.add(copy.deepcopy(elem))
    for kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence",
               "DimensionIndexSequence", "DimensionOrganizationSequence", "AcquisitionContextSequence"):
        if kw in out:
            for item in out[kw].value:
                _clean_nested(item, uids)
    out.SOPInstanceUID = uids(ds.SOPInstanceUID)
    out.StudyInstanceUID = uids(ds.StudyInstanceUID)
    out.SeriesInstanceUID = uids(ds.SeriesInstanceUID)
    if "FrameOfReferenceUID" in ds:
        out.FrameOfReferenceUID = uids(ds.FrameOfReferenceUID)
    out.PatientName = f"{case_code}^"  # the code as family name (a one-component PN)
    out.PatientID = case_code
    for kw in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName",
               "StudyID", "AccessionNumber"):
        setattr(out, kw, "")
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    out.DeidentificationMethodCodeSequence = [code]
    out.LongitudinalTemporalInformationModified = "REMOVED"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    meta.TransferSyntaxUID = ds.file_meta.TransferSyntaxUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
