"""The one catalogue of PROTOCOL.md's per-scan endpoints: key, title, unit and coded concept.

Everything that names, shows, exports or codes an endpoint reads it from here: the JSON of a scan
(:meth:`readerapp.densitometry.Endpoints.to_dict`), the live panel, the study's flat values and
CSV columns, the adjudication view and the DICOM SEG and SR. The density histogram's bins are
derived from the one set of edges in :data:`readerapp.labels.BIN_EDGES_HU`.

Codes come from the standards where they exist, each checked against pydicom's copy of DICOM
PS3.16 (``pydicom.sr.codedict.codes``) or, where it has none, a public reference named beside it:

- lung: SNOMED CT 39607008 "Lung" (CID 4, 6100, 7151, 7192, ...);
- ground-glass opacity: DCM 112120 "Ground glass opacity" (CID 6102, 6104);
- consolidation: SNOMED CT 9656002 "Consolidation" (a morphologic abnormality; not in pydicom's
  dictionary: taken from HL7 FHIR's BodyStructure example "right-lung-consolidation");
- lesion (ground glass and consolidation together): SNOMED CT 52988006 "Lesion" (CID 7151);
- volumes: SNOMED CT 118565006 "Volume" (CID 7472), by DCM 126030 "Sum of segmented voxel
  method for volume" (CID 7474); a percentage of lung volume is that volume in UCUM "%";
- mean lung density: DCM 112031 "Attenuation Coefficient" (CID 7469) with the derivation
  SNOMED CT 373098007 "Mean" (CID 7464), in UCUM "[hnsf'U]";
- SEG segment categories (CID 7150): SNOMED CT 91723000 "Anatomical Structure" (lung) and
  49755003 "Morphologically Abnormal Structure" (ground glass, consolidation).

The lesion weights (HU x voxel, HU x mL) and the tissue-equivalent mass have no standard concept:
they carry the private scheme :data:`PRIVATE_SCHEME` and stay out of the DICOM SR by default
(``dciodvfy`` warns about any scheme it does not know), while JSON and CSV carry them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from .labels import BIN_EDGES_HU

#: The private coding scheme, only for concepts no standard names (see the module notes).
PRIVATE_SCHEME = "99RDRAPP"
#: Coding schemes of the standards used here (DICOM PS3.16 Table 8-1 designators; RFC5646 codes
#: the SR's language).
STANDARD_SCHEMES = frozenset({"SCT", "DCM", "UCUM", "LN", "RFC5646"})


@dataclass(frozen=True)
class Code:
    """A coded concept: (code value, coding scheme designator, code meaning)."""

    value: str
    scheme: str
    meaning: str

    @property
    def standard(self) -> bool:
        return self.scheme in STANDARD_SCHEMES

    def as_tuple(self) -> tuple[str, str, str]:
        return (self.value, self.scheme, self.meaning)


@dataclass(frozen=True)
class Unit:
    """A unit as shown to a reader and as UCUM (DICOM's unit coding scheme)."""

    display: str
    ucum: str
    meaning: str

    @property
    def code(self) -> Code:
        return Code(self.ucum, "UCUM", self.meaning)


ML = Unit("mL", "ml", "milliliter")
PERCENT = Unit("%", "%", "Percent")
HU = Unit("HU", "[hnsf'U]", "Hounsfield unit")
#: HU summed over voxels: the voxel is a count, written as a UCUM annotation.
HU_VOXEL = Unit("HU·voxel", "[hnsf'U].{voxel}", "Hounsfield unit x voxel")
HU_ML = Unit("HU·mL", "[hnsf'U].ml", "Hounsfield unit x milliliter")
GRAM = Unit("g", "g", "gram")

# --- concepts (standard first; every standard one is in pydicom's codedict unless noted) -------
LUNG = Code("39607008", "SCT", "Lung")
GROUND_GLASS_OPACITY = Code("112120", "DCM", "Ground glass opacity")
CONSOLIDATION = Code("9656002", "SCT", "Consolidation")  # HL7 FHIR example; see module notes
LESION = Code("52988006", "SCT", "Lesion")
VOLUME = Code("118565006", "SCT", "Volume")
SUM_OF_SEGMENTED_VOXELS = Code("126030", "DCM", "Sum of segmented voxel method for volume")
ATTENUATION_COEFFICIENT = Code("112031", "DCM", "Attenuation Coefficient")
MEAN = Code("373098007", "SCT", "Mean")
#: Segment property categories of the SEG (CID 7150).
ANATOMICAL_STRUCTURE = Code("91723000", "SCT", "Anatomical Structure")
MORPHOLOGICALLY_ABNORMAL_STRUCTURE = Code("49755003", "SCT", "Morphologically Abnormal Structure")


def private(value: str, meaning: str) -> Code:
    return Code(value, PRIVATE_SCHEME, meaning)


class EndpointKind(StrEnum):
    VOLUME = "volume"
    PERCENT = "percent"
    WEIGHT = "weight"
    MASS = "mass"
    MEAN = "mean"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Endpoint:
    """One entry of PROTOCOL.md's endpoint table."""

    key: str
    title: str
    kind: EndpointKind
    #: None for the density histogram (its bins carry volume_ml and pct).
    unit: Unit | None
    #: What is measured (a quantity concept), standard where one exists.
    concept: Code | None
    #: Of what: the lung, ground glass, consolidation or the whole lesion.
    finding: Code
    derivation: Code | None = None
    method: Code | None = None

    @property
    def scalar(self) -> bool:
        return self.kind is not EndpointKind.HISTOGRAM

    @property
    def label(self) -> str:
        """Title with the display unit, for a table row or a column header."""
        return f"{self.title} ({self.unit.display})" if self.unit else self.title


def _vol(key: str, title: str, finding: Code) -> Endpoint:
    return Endpoint(key, title, EndpointKind.VOLUME, ML, VOLUME, finding, method=SUM_OF_SEGMENTED_VOXELS)


def _pct(key: str, title: str, finding: Code) -> Endpoint:
    return Endpoint(key, title, EndpointKind.PERCENT, PERCENT, VOLUME, finding, method=SUM_OF_SEGMENTED_VOXELS)


#: PROTOCOL.md's "Endpoints of one scan", in its order: the JSON's keys and the panel's rows.
CATALOGUE: tuple[Endpoint, ...] = (
    _vol("lung_volume_ml", "Lung volume", LUNG),
    _vol("lesion_volume_ml", "Lesion volume", LESION),
    _pct("lesion_pct", "Lesion, of lung", LESION),
    _vol("ggo_volume_ml", "GGO volume", GROUND_GLASS_OPACITY),
    _pct("ggo_pct", "GGO, of lung", GROUND_GLASS_OPACITY),
    _vol("consolidation_volume_ml", "Consolidation volume", CONSOLIDATION),
    _pct("consolidation_pct", "Consolidation, of lung", CONSOLIDATION),
    Endpoint("lesion_weight_hu_voxel", "Lesion weight", EndpointKind.WEIGHT, HU_VOXEL,
             private("LESION_WEIGHT_HU_VOXEL", "Sum of HU over lesion voxels"), LESION),
    Endpoint("lesion_weight_hu_ml", "Lesion weight", EndpointKind.WEIGHT, HU_ML,
             private("LESION_WEIGHT_HU_ML", "Sum of HU x voxel volume over lesion voxels"), LESION),
    Endpoint("lesion_mass_g", "Lesion mass", EndpointKind.MASS, GRAM,
             private("LESION_MASS_G", "Tissue-equivalent lesion mass"), LESION),
    Endpoint("density_histogram", "Lung density histogram", EndpointKind.HISTOGRAM, None, None, LUNG),
    Endpoint("mean_lung_hu", "Mean lung density", EndpointKind.MEAN, HU, ATTENUATION_COEFFICIENT, LUNG,
             derivation=MEAN),
)
BY_KEY: dict[str, Endpoint] = {e.key: e for e in CATALOGUE}
KEYS: tuple[str, ...] = tuple(e.key for e in CATALOGUE)
SCALAR_KEYS: tuple[str, ...] = tuple(e.key for e in CATALOGUE if e.scalar)
#: Key of the ``{value key: why it is null}`` mapping that travels with the endpoint values.
NULL_REASONS_KEY = "null_reasons"


@dataclass(frozen=True)
class DensityBin:
    """One bin of the lung density histogram: lower <= HU < upper (None: unbounded)."""

    name: str
    title: str
    lower_hu: int | None
    upper_hu: int | None


def _bin_name(lo: int | None, hi: int | None) -> str:
    if lo is None:
        return f"below_{hi}"
    if hi is None:
        return f"{lo}_and_above"
    return f"{lo}_to_{hi}"


def _bin_title(lo: int | None, hi: int | None) -> str:
    def m(v: int) -> str:
        return str(v).replace("-", "\u2212")

    if lo is None:
        return f"< {m(hi)} HU"  # type: ignore[arg-type]
    if hi is None:
        return f"\u2265 {m(lo)} HU"
    return f"{m(lo)}\u2026{m(hi)} HU"


def _bins() -> tuple[DensityBin, ...]:
    lowers: tuple[int | None, ...] = (None, *BIN_EDGES_HU)
    uppers: tuple[int | None, ...] = (*BIN_EDGES_HU, None)
    return tuple(DensityBin(_bin_name(lo, hi), _bin_title(lo, hi), lo, hi) for lo, hi in zip(lowers, uppers, strict=True))


#: The density histogram's bins, from :data:`readerapp.labels.BIN_EDGES_HU`.
BINS: tuple[DensityBin, ...] = _bins()
#: The numbers each bin carries in the flat (study, CSV) view.
HISTOGRAM_FIELDS: tuple[str, ...] = ("volume_ml", "pct")
HISTOGRAM_FIELD_UNITS: dict[str, Unit] = {"volume_ml": ML, "pct": PERCENT}


def flat_keys() -> list[str]:
    """Every numeric endpoint of a scan as a flat key, in PROTOCOL.md's order (the CSV's columns):
    the scalars, then ``density_histogram.<bin>.<field>``."""
    keys = list(SCALAR_KEYS)
    keys += [f"density_histogram.{b.name}.{f}" for b in BINS for f in HISTOGRAM_FIELDS]
    return keys


def flat_label(key: str) -> str:
    """A reader-facing name of a flat key (the adjudication view's rows)."""
    if key in BY_KEY:
        return BY_KEY[key].label
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "density_histogram":
        b = next((x for x in BINS if x.name == parts[1]), None)
        unit = HISTOGRAM_FIELD_UNITS.get(parts[2])
        if b is not None and unit is not None:
            return f"Lung {b.title} ({unit.display})"
    return key


# --- statuses and sources, as stored (the values are the strings already in databases/files) -----
class SegmentationSource(StrEnum):
    """Where a label map came from: proposed automatically (not edited), loaded from a file or a
    saved read (not edited), or given/corrected by a reader."""

    AUTO = "auto"
    LOADED = "loaded"
    CORRECTED = "corrected"


# --- finite values ------------------------------------------------------------------------------
ZERO_LUNG_REASON = "lung volume is zero: a proportion of it is undefined"
EMPTY_LUNG_MEAN_REASON = "no lung voxels: a mean over them is undefined"
EMPTY_BIN_MEAN_REASON = "no lung voxels in this bin: a mean over them is undefined"


def is_finite_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def sanitize(obj: Any, reasons: dict[str, str], path: str = "") -> Any:
    """``obj`` with every non-finite float (NaN, +-Infinity) replaced by None, each replacement
    recorded in ``reasons`` under its dotted path; JSON written from the result never fails
    with ``allow_nan=False`` and never holds a number that is not one."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        reasons[path or "value"] = f"not a finite number ({obj!r})"
        return None
    if isinstance(obj, dict):
        return {k: sanitize(v, reasons, f"{path}.{k}" if path else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v, reasons, f"{path}.{i}" if path else str(i)) for i, v in enumerate(obj)]
    return obj


__all__ = [
    "BINS", "BY_KEY", "CATALOGUE", "KEYS", "NULL_REASONS_KEY", "PRIVATE_SCHEME", "SCALAR_KEYS",
    "Code", "DensityBin", "Endpoint", "EndpointKind", "SegmentationSource", "Unit",
    "flat_keys", "flat_label", "sanitize",
]
