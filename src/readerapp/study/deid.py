"""De-identification of CT files for blinded reading (DICOM PS3.15 Annex E, basic profile).

We keep an allow-list of the attributes a reader and the measurement need (image pixels, geometry,
rescale, technique) and drop everything else, which removes every attribute the basic profile
removes and more (private tags, descriptions, free text, dates, institution, devices, people).
What must exist is replaced: patient name and ID become the case code; study date, time, ID and
accession number become empty; instance UIDs are remapped consistently (the same original UID maps
to the same new UID, keyed by a per-study secret), so a series stays one series and SEG/SR objects
can reference it.

Sequences are cleaned too (the whole tree is walked): inside the Enhanced CT functional groups only
the macros and attributes the geometry and measurement need are kept (:data:`FUNCTIONAL_GROUP_MACROS`);
no bulk, unknown-VR or age value (an icon image, a maker note, an element of unknown VR, PatientAge)
and no attribute of PS3.15 Annex E survive anywhere, except the pixel data at the top level. Kept
free text (ContrastBolusAgent) is replaced by a fixed value. Images that may show identity in
their pixels (BurnedInAnnotation YES, secondary captures) are found by :func:`burned_in_reason`;
the importer refuses them unless the administrator confirms.
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

#: Value representations never kept anywhere in the tree (PixelData at the top level excepted):
#: bulk and unknown data (a maker note, an icon image, an element of unknown VR) and ages.
_DROP_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "AS"})
#: Text VRs never kept inside sequences: they carry names, dates and free text.
_DROP_VRS_NESTED = frozenset({"PN", "DA", "DT", "TM", "LO", "LT", "SH", "ST", "UT", "UC", "AE", "UR"})
#: Top-level bulk data kept: the image itself.
_PIXEL_KEYWORDS = frozenset({"PixelData", "FloatPixelData", "DoubleFloatPixelData"})

#: Attributes of DICOM PS3.15 Annex E (Table E.1-1) that must not survive anywhere in the tree
#: (except the UIDs, which are remapped, and the patient name/ID and dates set below at the top).
ANNEX_E = frozenset(["AccessionNumber", "AcquisitionComments", "AcquisitionContextSequence", "AcquisitionDate", "AcquisitionDateTime", "AcquisitionDeviceProcessingDescription", "AcquisitionProtocolDescription", "AcquisitionTime", "ActualHumanPerformersSequence", "AdditionalPatientHistory", "AdmissionID", "AdmittingDate", "AdmittingDiagnosesCodeSequence", "AdmittingDiagnosesDescription", "AdmittingTime", "AffectedSOPInstanceUID", "Allergies", "Arbitrary", "AuthorObserverSequence", "BranchOfService", "CassetteID", "CommentsOnThePerformedProcedureStep", "ConfidentialityConstraintOnPatientDataDescription", "ContentCreatorName", "ContentCreatorIdentificationCodeSequence", "ContentDate", "ContentSequence", "ContentTime", "ContrastBolusAgent", "ContributionDescription", "CountryOfResidence", "CurrentPatientLocation", "CurveDate", "CurveTime", "CustodialOrganizationSequence", "DataSetTrailingPadding", "DerivationDescription", "DetectorID", "DeviceSerialNumber", "DeviceUID", "DigitalSignaturesSequence", "DischargeDiagnosisDescription", "DistributionAddress", "DistributionName", "DoseReferenceUID", "EthnicGroup", "FailedSOPInstanceUIDList", "FiducialUID", "FillerOrderNumberImagingServiceRequest", "FrameComments", "GantryID", "GeneratorID", "GraphicAnnotationSequence", "HumanPerformerName", "HumanPerformerOrganization", "IconImageSequence", "IdentifyingComments", "ImageComments", "ImagePresentationComments", "ImagingServiceRequestComments", "Impressions", "InstanceCreatorUID", "InstitutionAddress", "InstitutionCodeSequence", "InstitutionName", "InstitutionalDepartmentName", "InsurancePlanIdentification", "IntendedRecipientsOfResultsIdentificationSequence", "InterpretationApproverSequence", "InterpretationAuthor", "InterpretationDiagnosisDescription", "InterpretationIDIssuer", "InterpretationRecorder", "InterpretationText", "InterpretationTranscriber", "IssuerOfAdmissionID", "IssuerOfPatientID", "IssuerOfServiceEpisodeID", "LastMenstrualDate", "MAC", "MedicalAlerts", "MedicalRecordLocator", "MilitaryRank", "ModifiedAttributesSequence", "ModifiedImageDescription", "ModifyingDeviceID", "ModifyingDeviceManufacturer", "NameOfPhysiciansReadingStudy", "NamesOfIntendedRecipientsOfResults", "Occupation", "OperatorIdentificationSequence", "OperatorsName", "OriginalAttributesSequence", "OrderCallbackPhoneNumber", "OrderEnteredBy", "OrderEntererLocation", "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "OverlayComments", "OverlayDate", "OverlayTime", "ParticipantSequence", "PatientAddress", "PatientAge", "PatientBirthDate", "PatientBirthName", "PatientBirthTime", "PatientComments", "PatientInsurancePlanCodeSequence", "PatientMotherBirthName", "PatientName", "PatientPrimaryLanguageCodeSequence", "PatientPrimaryLanguageModifierCodeSequence", "PatientReligiousPreference", "PatientSex", "PatientSexNeutered", "PatientSize", "PatientState", "PatientTelephoneNumbers", "PatientTransportArrangements", "PatientWeight", "PatientID", "PerformedLocation", "PerformedProcedureStepDescription", "PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime", "PerformedProcedureStepID", "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime", "PerformedStationAETitle", "PerformedStationGeographicLocationCodeSequence", "PerformedStationName", "PerformedStationNameCodeSequence", "PerformingPhysicianIdentificationSequence", "PerformingPhysicianName", "PersonAddress", "PersonIdentificationCodeSequence", "PersonName", "PersonTelephoneNumbers", "PhysicianApprovingInterpretation", "PhysiciansOfRecord", "PhysiciansOfRecordIdentificationSequence", "PhysiciansReadingStudyIdentificationSequence", "PlacerOrderNumberImagingServiceRequest", "PlateID", "PreMedication", "PregnancyStatus", "ProtocolName", "ReasonForTheImagingServiceRequest", "ReasonForStudy", "ReferencedDigitalSignatureSequence", "ReferencedPatientAliasSequence", "ReferencedPatientSequence", "ReferencedSOPInstanceMACSequence", "ReferencedStudySequence", "ReferringPhysicianAddress", "ReferringPhysicianIdentificationSequence", "ReferringPhysicianName", "ReferringPhysicianTelephoneNumbers", "RegionOfResidence", "RequestAttributesSequence", "RequestedContrastAgent", "RequestedProcedureComments", "RequestedProcedureDescription", "RequestedProcedureID", "RequestedProcedureLocation", "RequestingPhysician", "RequestingService", "ResponsibleOrganization", "ResponsiblePerson", "ResultsComments", "ResultsDistributionListSequence", "ResultsIDIssuer", "ReviewerName", "ScheduledHumanPerformersSequence", "ScheduledPatientInstitutionResidence", "ScheduledPerformingPhysicianIdentificationSequence", "ScheduledPerformingPhysicianName", "ScheduledProcedureStepDescription", "ScheduledProcedureStepEndDate", "ScheduledProcedureStepEndTime", "ScheduledProcedureStepLocation", "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime", "ScheduledStationAETitle", "ScheduledStationGeographicLocationCodeSequence", "ScheduledStationName", "ScheduledStationNameCodeSequence", "ScheduledStudyLocation", "ScheduledStudyLocationAETitle", "SeriesDate", "SeriesDescription", "SeriesTime", "ServiceEpisodeDescription", "ServiceEpisodeID", "SmokingStatus", "SourceImageSequence", "SpecialNeeds", "StationName", "StudyComments", "StudyDate", "StudyDescription", "StudyID", "StudyIDIssuer", "StudyTime", "TextComments", "TextString", "TimezoneOffsetFromUTC", "TopicAuthor", "TopicKeywords", "TopicSubject", "TopicTitle", "VerifyingObserverIdentificationCodeSequence", "VerifyingObserverName", "VerifyingObserverSequence", "VerifyingOrganization", "VisitComments"])

#: Attributes set by :func:`deidentify` itself at the top level (Annex E's "Z"/"D" actions).
_SET_AT_TOP = frozenset({"ContrastBolusAgent", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                         "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
                         "AcquisitionContextSequence"})

_CODE = frozenset({"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning",
                   "LongCodeValue", "URNCodeValue"})

#: Inside the Enhanced CT functional groups, the macros kept and, per macro, the attributes kept
#: (PS3.3 C.7.6.16 and C.8.15.3); everything else in a functional group item is dropped.
FUNCTIONAL_GROUP_MACROS: dict[str, frozenset[str]] = {
    "PixelMeasuresSequence": frozenset({"PixelSpacing", "SliceThickness", "SpacingBetweenSlices"}),
    "PlaneOrientationSequence": frozenset({"ImageOrientationPatient"}),
    "PlanePositionSequence": frozenset({"ImagePositionPatient"}),
    "FrameContentSequence": frozenset({"FrameAcquisitionNumber", "StackID", "InStackPositionNumber",
                                       "DimensionIndexValues", "TemporalPositionIndex"}),
    "PixelValueTransformationSequence": frozenset({"RescaleIntercept", "RescaleSlope", "RescaleType"}),
    "FrameVOILUTSequence": frozenset({"WindowCenter", "WindowWidth", "VOILUTFunction"}),
    "CTImageFrameTypeSequence": frozenset({"FrameType", "PixelPresentation", "VolumetricProperties",
                                           "VolumeBasedCalculationTechnique"}),
    "CTAcquisitionTypeSequence": frozenset({"AcquisitionType", "TubeAngle", "ConstantVolumeFlag",
                                            "FluoroscopyFlag"}),
    "CTAcquisitionDetailsSequence": frozenset({"DataCollectionDiameter", "GantryDetectorTilt", "TableHeight",
                                               "RotationDirection", "RevolutionTime", "SingleCollimationWidth",
                                               "TotalCollimationWidth"}),
    "CTTableDynamicsSequence": frozenset({"TableSpeed", "TableFeedPerRotation", "SpiralPitchFactor"}),
    "CTPositionSequence": frozenset({"TablePosition", "ReconstructionTargetCenterPatient",
                                     "DataCollectionCenterPatient"}),
    "CTGeometrySequence": frozenset({"DistanceSourceToDetector", "DistanceSourceToDataCollectionCenter"}),
    "CTReconstructionSequence": frozenset({"ReconstructionAlgorithm", "ConvolutionKernel",
                                           "ConvolutionKernelGroup", "ReconstructionDiameter",
                                           "ReconstructionFieldOfView", "ReconstructionPixelSpacing",
                                           "ReconstructionAngle", "ImageFilter"}),
    "CTExposureSequence": frozenset({"ExposureTimeInms", "XRayTubeCurrentInmA", "ExposureInmAs",
                                     "ExposureModulationType", "CTDIvol", "CTDIPhantomTypeCodeSequence"}),
    "CTXRayDetailsSequence": frozenset({"KVP", "FocalSpots", "FilterType", "FilterMaterial"}),
    "FrameAnatomySequence": frozenset({"AnatomicRegionSequence", "FrameLaterality"}),
}

#: Other kept sequences and what their items may hold.
_ITEM_KEEP: dict[str, frozenset[str]] = {
    "SharedFunctionalGroupsSequence": frozenset(FUNCTIONAL_GROUP_MACROS),
    "PerFrameFunctionalGroupsSequence": frozenset(FUNCTIONAL_GROUP_MACROS),
    "DimensionOrganizationSequence": frozenset({"DimensionOrganizationUID"}),
    "DimensionIndexSequence": frozenset({"DimensionIndexPointer", "FunctionalGroupPointer",
                                         "DimensionOrganizationUID"}),
    "CTDIPhantomTypeCodeSequence": _CODE,
    "AnatomicRegionSequence": _CODE,
    **FUNCTIONAL_GROUP_MACROS,
}

#: Kept free text replaced by a fixed value (the fact stays, the words go).
_REPLACED_TEXT = {"ContrastBolusAgent": "CONTRAST"}

#: SOP classes of secondary captures (PS3.4 B.5): screenshots and scanned films, where identity
#: is often burned into the pixels.
SECONDARY_CAPTURE_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4",
})

#: DeidentificationMethod (LO, at most 64 characters).
METHOD = "ReaderApp allow-list; PS3.15 Annex E basic profile"


def burned_in_reason(ds: Dataset) -> str | None:
    """Why this image may show identity in its pixels (None when nothing says so)."""
    if str(getattr(ds, "BurnedInAnnotation", "") or "").upper() == "YES":
        return "BurnedInAnnotation is YES"
    if str(getattr(ds, "SOPClassUID", "")) in SECONDARY_CAPTURE_CLASSES:
        return "it is a secondary capture (SOP class)"
    image_type = [str(v).upper() for v in (getattr(ds, "ImageType", None) or [])]
    if len(image_type) >= 2 and image_type[0] == "DERIVED" and image_type[1] == "SECONDARY":
        return "its ImageType is DERIVED\\SECONDARY"
    if "ConversionType" in ds:
        return f"it was converted (ConversionType {ds.ConversionType})"
    return None


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


def _clean_item(ds: Dataset, keep: frozenset[str], uids: UidMapper) -> None:
    """Keep only ``keep`` in a sequence item (recursively, per :data:`_ITEM_KEEP`)."""
    for elem in list(ds):
        kw = elem.keyword
        if elem.tag.is_private or kw not in keep or elem.VR in _DROP_VRS or elem.VR in _DROP_VRS_NESTED:
            del ds[elem.tag]
        elif elem.VR == "SQ":
            sub = _ITEM_KEEP.get(kw, frozenset())
            for item in elem.value:
                _clean_item(item, sub, uids)
        elif elem.VR == "UI" and kw not in _NOT_REMAPPED and elem.value:
            elem.value = [uids(v) for v in elem.value] if elem.VM > 1 else uids(elem.value)


def _scrub(ds: Dataset, top: bool) -> None:
    """The last word, over the whole tree: no private tag, no bulk/unknown/age value and no
    Annex E attribute survives anywhere (the allow-lists should have removed them already)."""
    for elem in list(ds):
        kw = elem.keyword
        bad_vr = elem.VR in _DROP_VRS and not (top and kw in _PIXEL_KEYWORDS)
        annex_e = kw in ANNEX_E and not (top and kw in _SET_AT_TOP)
        if elem.tag.is_private or bad_vr or annex_e or not kw:
            del ds[elem.tag]
        elif elem.VR == "SQ":
            for item in elem.value:
                _scrub(item, top=False)


def deidentify(ds: Dataset, case_code: str, uids: UidMapper) -> Dataset:
    """Return a new, de-identified dataset (the input is not changed)."""
    out = Dataset()
    for elem in ds:
        if elem.keyword in KEEP and not elem.tag.is_private:
            out.add(copy.deepcopy(elem))
    for kw, keep in _ITEM_KEEP.items():
        if kw in out and kw not in FUNCTIONAL_GROUP_MACROS:
            for item in out[kw].value:
                _clean_item(item, keep, uids)
    for kw, value in _REPLACED_TEXT.items():
        if kw in out and str(out[kw].value or "").strip():
            out[kw].value = value
    if "AcquisitionContextSequence" in out:  # type 2 in Enhanced CT: kept, empty
        out.AcquisitionContextSequence = []
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
    _scrub(out, top=True)
    return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
