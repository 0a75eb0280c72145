"""The study's reading rules (PROTOCOL.md, "Reading workflow"): concordance and combination.

Endpoints are handled as a flat mapping of PROTOCOL.md's numeric values (the density histogram's
bins as ``density_histogram.<bin>.volume_ml`` and ``.pct``), plus the severity total and the
fibrosis features' patient-level presence from the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import endpoints as catalogue
from ..forms import FEATURE_KEYS as FORM_FEATURE_KEYS
from .config import CombineRule, StudyConfig

#: The scalar endpoints and the histogram's per-bin fields, from the one catalogue.
SCALAR_ENDPOINTS = catalogue.SCALAR_KEYS
HISTOGRAM_FIELDS = catalogue.HISTOGRAM_FIELDS
#: The fibrosis features, from the form's one list (readerapp.forms).
FEATURE_KEYS = FORM_FEATURE_KEYS


def endpoint_keys() -> list[str]:
    """Every numeric endpoint exported per scan, in PROTOCOL.md's order."""
    return catalogue.flat_keys()


def flatten_endpoints(endpoints: dict[str, Any]) -> dict[str, float | None]:
    """PROTOCOL.md's endpoint dict (``Endpoints.to_dict()``) as ``{key: number}``."""
    out: dict[str, float | None] = {k: endpoints.get(k) for k in SCALAR_ENDPOINTS}
    hist = endpoints.get("density_histogram") or []
    for i, spec in enumerate(catalogue.BINS):
        b = hist[i] if i < len(hist) else {}
        for f in HISTOGRAM_FIELDS:
            out[f"density_histogram.{spec.name}.{f}"] = b.get(f)
    return out


def null_reasons(endpoints: dict[str, Any]) -> dict[str, str]:
    """Why values of a stored endpoint dict are null (flat keys), as the densitometry said.

    Endpoint dicts stored before the reasons existed carry none; a null there gets a generic
    reason, so no exported null is left unexplained."""
    reasons = dict(endpoints.get(catalogue.NULL_REASONS_KEY) or {})
    for k, v in flatten_endpoints(endpoints).items():
        if v is None and k not in reasons:
            reasons[k] = "no value in the stored read"
    return {k: reasons[k] for k in catalogue.flat_keys() if k in reasons}


def form_summary(form: dict[str, Any] | None) -> dict[str, Any]:
    """Severity total and patient-level fibrosis (None where the form has no fibrosis grid)."""
    from ..forms import ReadForm

    f = ReadForm.from_dict(form) if form else ReadForm.blank(False)
    fib = f.fibrosis_patient_level() if f.fibrosis is not None else None
    return {"severity_total": f.severity_total(), "fibrosis": fib}


@dataclass(frozen=True)
class Concordance:
    discordant: bool
    reasons: tuple[str, ...]


def compare(
    config: StudyConfig,
    endpoints_a: dict[str, Any],
    form_a: dict[str, Any] | None,
    endpoints_b: dict[str, Any],
    form_b: dict[str, Any] | None,
    needs_fibrosis: bool,
) -> Concordance:
    """Discordant when lesion_pct differs by more than the threshold, or (on scans with the
    fibrosis form) any feature's patient-level presence differs."""
    reasons = []
    a, b = endpoints_a.get("lesion_pct"), endpoints_b.get("lesion_pct")
    limit = config.discordance.lesion_pct_points
    if a is not None and b is not None and abs(a - b) > limit:
        reasons.append(f"lesion_pct differs by {abs(a - b):.2f} points (limit {limit:g})")
    elif (a is None) != (b is None):
        reasons.append("lesion_pct is undefined (zero lung volume) in one read only")
    if needs_fibrosis and config.discordance.fibrosis_any_feature:
        fa = form_summary(form_a)["fibrosis"] or {}
        fb = form_summary(form_b)["fibrosis"] or {}
        for k in FEATURE_KEYS:
            if bool(fa.get(k)) != bool(fb.get(k)):
                reasons.append(f"fibrosis feature {k} present in one read only")
    return Concordance(bool(reasons), tuple(reasons))


def combine(values: list[float | None], rule: CombineRule | str = CombineRule.MEAN) -> float | None:
    """Final value of concordant reads (the study's ``combine`` setting)."""
    if any(v is None for v in values) or not values:
        return None
    if rule == CombineRule.MEAN:
        return sum(values) / len(values)  # type: ignore[arg-type]
    raise ValueError(f"unknown combination rule {rule!r}")


def differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Flat endpoint and form items that differ between two reads (for the side-by-side view)."""
    out: dict[str, tuple[Any, Any]] = {}
    for k in set(a) | set(b):
        if a.get(k) != b.get(k):
            out[k] = (a.get(k), b.get(k))
    return dict(sorted(out.items()))


def flat_items(endpoints: dict[str, Any], form: dict[str, Any] | None) -> dict[str, Any]:
    """Every endpoint and form item of a read as ``{key: value}`` (for the side-by-side view):
    endpoints, severity per lobe and total, fibrosis per feature (patient level) and lobe."""
    flat: dict[str, Any] = dict(flatten_endpoints(endpoints))
    summ = form_summary(form)
    flat["severity_total"] = summ["severity_total"]
    for k, v in (summ["fibrosis"] or {}).items():
        flat[f"fibrosis.{k}"] = v
    form = form or {}
    for lobe, v in (form.get("severity") or {}).items():
        flat[f"severity.{lobe}"] = v
    for feat, lobes in (form.get("fibrosis") or {}).items():
        for lobe, v in lobes.items():
            flat[f"fibrosis.{feat}.{lobe}"] = v
    return flat
