"""The reader's forms of PROTOCOL.md: per-lobe severity (every scan) and fibrosis (Day-90 scans).

A plain dataclass with strict validation on the way in (``from_dict``) so a read file, the study
database and the GUI all hold the same, always-valid object. The fibrosis features' titles and
definitions shown on screen come from ``resources/fibrosis_features.json`` (a study may replace
them with its charter's, :func:`load_fibrosis_features`). No Qt here: the GUI only renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ReaderAppError

#: The five lobes, in the order every form and export uses.
LOBES: tuple[str, ...] = ("RUL", "RML", "RLL", "LUL", "LLL")

LOBE_NAMES: dict[str, str] = {
    "RUL": "right upper lobe",
    "RML": "right middle lobe",
    "RLL": "right lower lobe",
    "LUL": "left upper lobe (lingula included)",
    "LLL": "left lower lobe",
}

SEVERITY_MIN, SEVERITY_MAX = 0, 5

#: Extent of involvement per lobe (PROTOCOL.md); total over lobes 0..25.
SEVERITY_SCALE: dict[int, str] = {
    0: "none",
    1: "under 5%",
    2: "5-25%",
    3: "26-50%",
    4: "51-75%",
    5: "over 75%",
}


@dataclass(frozen=True)
class FibrosisFeature:
    key: str
    title: str
    #: What the reader sees beside the checkboxes; where it comes from is in ``source``.
    definition: str
    source: str


#: The protocol's fibrosis features, in this order (PROTOCOL.md); only their texts may change.
PROTOCOL_FEATURE_KEYS = ("cord_like", "honeycombing", "septal_thickening",
                         "intralobular_thickening", "pleural_thickening")
#: A study's own feature texts (its charter's): a JSON file shaped as
#: ``resources/fibrosis_features.json``, named by this environment variable or passed to
#: :func:`load_fibrosis_features`.
FEATURE_TEXTS_ENV = "READERAPP_FIBROSIS_TEXTS"


def load_fibrosis_features(override: str | Path | None = None) -> tuple[FibrosisFeature, ...]:
    """The five features' titles and definitions: ``resources/fibrosis_features.json``
    (definitions paraphrase the Fleischner Society glossary, Hansell et al., Radiology
    2008;246:697-722; pleural thickening is a default charter text), or a study's override file
    (argument, else the ``READERAPP_FIBROSIS_TEXTS`` environment variable)."""
    import json
    import os

    from .assets import resource

    source = override or os.environ.get(FEATURE_TEXTS_ENV) or resource("fibrosis_features.json")
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
        items = data["features"]
        features = tuple(FibrosisFeature(str(i["key"]), str(i["title"]), str(i["definition"]),
                                         str(i.get("source", f"study texts ({Path(source).name})")))
                         for i in items)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FormError(f"fibrosis feature texts {source}: not readable ({exc})") from exc
    keys = tuple(f.key for f in features)
    if keys != PROTOCOL_FEATURE_KEYS:
        raise FormError(f"fibrosis feature texts {source}: the features must be "
                        f"{', '.join(PROTOCOL_FEATURE_KEYS)} in this order (got {', '.join(keys)})")
    return features


class FormError(ReaderAppError):
    """A read form is malformed (unknown lobe or feature, value out of range, wrong type)."""


#: The features as shown (resources/, or the study's texts named by READERAPP_FIBROSIS_TEXTS).
FIBROSIS_FEATURES: tuple[FibrosisFeature, ...] = load_fibrosis_features()
FEATURE_KEYS: tuple[str, ...] = PROTOCOL_FEATURE_KEYS
FEATURES_BY_KEY: dict[str, FibrosisFeature] = {f.key: f for f in FIBROSIS_FEATURES}


def _empty_fibrosis() -> dict[str, dict[str, bool | None]]:
    return {k: dict.fromkeys(LOBES) for k in FEATURE_KEYS}


@dataclass
class ReadForm:
    """Severity per lobe for every scan; fibrosis per feature and lobe for Day-90 scans.

    ``None`` means not answered yet; ``fibrosis`` is ``None`` when the scan does not need it.
    """

    severity: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(LOBES))
    fibrosis: dict[str, dict[str, bool | None]] | None = None
    comment: str = ""

    @classmethod
    def blank(cls, with_fibrosis: bool) -> ReadForm:
        """An unanswered form; with the fibrosis grid for a Day-90 scan."""
        return cls(fibrosis=_empty_fibrosis() if with_fibrosis else None)

    # --- validation and (de)serialisation -------------------------------------------------
    def __post_init__(self) -> None:
        self.severity = _check_severity(self.severity)
        self.fibrosis = None if self.fibrosis is None else _check_fibrosis(self.fibrosis)
        if not isinstance(self.comment, str):
            raise FormError(f"form comment must be text, got {type(self.comment).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape stored in form.json and the study database."""
        return {
            "severity": {lobe: self.severity[lobe] for lobe in LOBES},
            "fibrosis": None
            if self.fibrosis is None
            else {k: {lobe: self.fibrosis[k][lobe] for lobe in LOBES} for k in FEATURE_KEYS},
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, d: Any) -> ReadForm:
        """Validate and build; every problem is a :class:`FormError` naming the item."""
        if not isinstance(d, dict):
            raise FormError(f"a read form must be a JSON object, got {type(d).__name__}")
        unknown = set(d) - {"severity", "fibrosis", "comment"}
        if unknown:
            raise FormError(f"unknown form field(s): {', '.join(sorted(unknown))}")
        if "severity" not in d:
            raise FormError("form has no 'severity' field")
        return cls(
            severity=d["severity"], fibrosis=d.get("fibrosis"), comment=d.get("comment", "") or ""
        )

    # --- questions the workflow asks ------------------------------------------------------
    def missing(self, require_fibrosis: bool) -> list[str]:
        """The required answers not yet given (empty: complete), named as the form shows them:
        ``"Severity RUL"``, ``"Honeycombing, LLL"`` (the feature's title, never its key)."""
        out = [f"Severity {lobe}" for lobe in LOBES if self.severity[lobe] is None]
        if require_fibrosis:
            grid = self.fibrosis if self.fibrosis is not None else _empty_fibrosis()
            for f in FIBROSIS_FEATURES:
                out += [f"{f.title}, {lobe}" for lobe in LOBES if grid[f.key][lobe] is None]
        return out

    def is_complete(self, require_fibrosis: bool) -> bool:
        return not self.missing(require_fibrosis)

    def severity_total(self) -> int:
        """CT severity score 0..25 (unanswered lobes count 0; check :meth:`missing` first)."""
        return sum(v or 0 for v in self.severity.values())

    def fibrosis_patient_level(self) -> dict[str, bool]:
        """Per feature: present in any lobe (PROTOCOL.md). All False when there is no grid."""
        if self.fibrosis is None:
            return dict.fromkeys(FEATURE_KEYS, False)
        return {k: any(bool(v) for v in self.fibrosis[k].values()) for k in FEATURE_KEYS}


def _check_lobes(d: Any, what: str) -> None:
    if not isinstance(d, dict):
        raise FormError(f"{what} must be an object keyed by lobe, got {type(d).__name__}")
    unknown = set(d) - set(LOBES)
    if unknown:
        raise FormError(
            f"{what}: unknown lobe(s) {', '.join(sorted(map(str, unknown)))}; "
            f"expected {', '.join(LOBES)}"
        )


def _check_severity(d: Any) -> dict[str, int | None]:
    _check_lobes(d, "severity")
    out: dict[str, int | None] = {}
    for lobe in LOBES:
        v = d.get(lobe)
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, int) or not SEVERITY_MIN <= v <= SEVERITY_MAX
        ):
            raise FormError(
                f"severity {lobe} must be an integer {SEVERITY_MIN}..{SEVERITY_MAX} or empty, "
                f"got {v!r}"
            )
        out[lobe] = v
    return out


def _check_fibrosis(d: Any) -> dict[str, dict[str, bool | None]]:
    if not isinstance(d, dict):
        raise FormError(f"fibrosis must be an object keyed by feature or null, got {type(d).__name__}")
    unknown = set(d) - set(FEATURE_KEYS)
    if unknown:
        raise FormError(
            f"fibrosis: unknown feature(s) {', '.join(sorted(map(str, unknown)))}; "
            f"expected {', '.join(FEATURE_KEYS)}"
        )
    out: dict[str, dict[str, bool | None]] = {}
    for k in FEATURE_KEYS:
        row = d.get(k, {})
        _check_lobes(row, f"fibrosis {k}")
        out[k] = {}
        for lobe in LOBES:
            v = row.get(lobe)
            if v is not None and not isinstance(v, bool):
                raise FormError(f"fibrosis {k} {lobe} must be true, false or empty, got {v!r}")
            out[k][lobe] = v
    return out
