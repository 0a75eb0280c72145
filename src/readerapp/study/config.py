"""The study's settings, read from a JSON, TOML or (if PyYAML is installed) YAML file.

Everything PROTOCOL.md calls a "study setting" lives here: visits and which get the fibrosis form,
the reading mode, the discordance thresholds and how concordant reads combine. The parsed config is
stored in the database as canonical JSON, so every later step (and the audit trail) sees exactly
the settings the study was created with.

Example (TOML)::

    name = "UC-MSC COVID-19 phase 2"
    visits = ["baseline", "day10", "day28", "day90"]
    fibrosis_visits = ["day90"]
    reading_mode = "per_scan"          # or "longitudinal"
    combine = "mean"

    [discordance]
    lesion_pct_points = 5.0
    fibrosis_any_feature = true

    [security]
    max_failed_logins = 5
    lockout_minutes = 15
    inactivity_minutes = 15
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import StudyConfigError


class ReadingMode(StrEnum):
    """Each scan alone (visit hidden), or a subject's scans together (visit shown)."""

    PER_SCAN = "per_scan"
    LONGITUDINAL = "longitudinal"


class CombineRule(StrEnum):
    """How two concordant reads make the final value."""

    MEAN = "mean"


READING_MODES = tuple(m.value for m in ReadingMode)
COMBINE_RULES = tuple(c.value for c in CombineRule)

DEFAULT_SIGNATURE_MEANING = (
    "I confirm that this read is my own independent assessment of this scan and I approve it."
)
DEFAULT_ADJUDICATION_MEANING = (
    "I confirm that this is the final read of this scan, decided by me as adjudicator."
)


@dataclass(frozen=True)
class Discordance:
    #: Reads differ by more than this many percentage points of lesion_pct: discordant.
    lesion_pct_points: float = 5.0
    #: Any fibrosis feature's patient-level presence differs: discordant.
    fibrosis_any_feature: bool = True


@dataclass(frozen=True)
class Security:
    max_failed_logins: int = 5
    lockout_minutes: float = 15.0
    inactivity_minutes: float = 15.0


@dataclass(frozen=True)
class StudyConfig:
    name: str
    visits: tuple[str, ...] = ("baseline", "day10", "day28", "day90")
    fibrosis_visits: tuple[str, ...] = ("day90",)
    reading_mode: ReadingMode = ReadingMode.PER_SCAN
    combine: CombineRule = CombineRule.MEAN
    discordance: Discordance = field(default_factory=Discordance)
    security: Security = field(default_factory=Security)
    signature_meaning: str = DEFAULT_SIGNATURE_MEANING
    adjudication_meaning: str = DEFAULT_ADJUDICATION_MEANING

    @property
    def baseline(self) -> str:
        """The first visit is the baseline every change is computed from."""
        return self.visits[0]

    @property
    def longitudinal(self) -> bool:
        return self.reading_mode == ReadingMode.LONGITUDINAL

    def needs_fibrosis(self, visit: str) -> bool:
        return visit in self.fibrosis_visits

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["visits"] = list(self.visits)
        d["fibrosis_visits"] = list(self.fibrosis_visits)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Any, source: str = "study configuration") -> StudyConfig:
        """Validate a parsed configuration; every problem names ``source`` and the setting."""
        if not isinstance(d, dict):
            raise StudyConfigError(f"{source}: expected a table/object at the top level")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise StudyConfigError(f"{source}: unknown setting(s) {', '.join(sorted(unknown))}")
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise StudyConfigError(f"{source}: 'name' (the study's name) is required")
        visits = _str_tuple(d.get("visits", cls.visits), "visits", source)
        if len(visits) < 1 or len(set(visits)) != len(visits):
            raise StudyConfigError(f"{source}: 'visits' must list distinct visit names, baseline first")
        fib = _str_tuple(d.get("fibrosis_visits", cls.fibrosis_visits), "fibrosis_visits", source)
        bad = [v for v in fib if v not in visits]
        if bad:
            raise StudyConfigError(f"{source}: fibrosis_visits names unknown visit(s) {bad}")
        mode = d.get("reading_mode", cls.reading_mode)
        if mode not in READING_MODES:
            raise StudyConfigError(f"{source}: reading_mode must be one of {READING_MODES}, got {mode!r}")
        combine = d.get("combine", cls.combine)
        if combine not in COMBINE_RULES:
            raise StudyConfigError(f"{source}: combine must be one of {COMBINE_RULES}, got {combine!r}")
        disc = _sub(d.get("discordance", {}), Discordance, "discordance", source)
        if disc.lesion_pct_points < 0:
            raise StudyConfigError(f"{source}: discordance.lesion_pct_points must be >= 0")
        sec = _sub(d.get("security", {}), Security, "security", source)
        if sec.max_failed_logins < 1 or sec.lockout_minutes <= 0 or sec.inactivity_minutes <= 0:
            raise StudyConfigError(f"{source}: security settings must be positive")
        texts = {}
        for key in ("signature_meaning", "adjudication_meaning"):
            val = d.get(key, getattr(cls, key))
            if not isinstance(val, str) or not val.strip():
                raise StudyConfigError(f"{source}: {key} must be a non-empty text")
            texts[key] = val
        return cls(
            name=name.strip(),
            visits=visits,
            fibrosis_visits=fib,
            reading_mode=ReadingMode(mode),
            combine=CombineRule(combine),
            discordance=disc,
            security=sec,
            **texts,
        )

    @classmethod
    def from_json(cls, text: str) -> StudyConfig:
        return cls.from_dict(json.loads(text), "stored study configuration")


def _str_tuple(v: Any, key: str, source: str) -> tuple[str, ...]:
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) and x for x in v):
        raise StudyConfigError(f"{source}: '{key}' must be a list of names")
    return tuple(v)


def _sub(v: Any, cls: type, key: str, source: str) -> Any:
    if not isinstance(v, dict):
        raise StudyConfigError(f"{source}: '{key}' must be a table/object")
    fields = dataclasses.fields(cls)
    unknown = set(v) - {f.name for f in fields}
    if unknown:
        raise StudyConfigError(f"{source}: unknown {key} setting(s) {', '.join(sorted(unknown))}")
    out = {}
    for f in fields:
        name = f.name
        if name not in v:
            continue
        val = v[name]
        want = f.type if isinstance(f.type, type) else {"float": float, "int": int, "bool": bool}[f.type]
        if want is float and isinstance(val, int) and not isinstance(val, bool):
            val = float(val)
        if not isinstance(val, want) or (want is not bool and isinstance(val, bool)):
            raise StudyConfigError(f"{source}: {key}.{name} must be a {want.__name__}, got {val!r}")
        out[name] = val
    return cls(**out)


def load_config(path: str | Path) -> StudyConfig:
    """Read a study configuration (.json, .toml, .yaml/.yml) and validate it."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise StudyConfigError(f"{p}: cannot read the study configuration ({exc.strerror})") from exc
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        elif suffix == ".json":
            data = json.loads(raw)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError as exc:
                raise StudyConfigError(
                    f"{p}: YAML needs PyYAML (pip install pyyaml); or write the file as TOML or JSON"
                ) from exc
            data = yaml.safe_load(raw)
        else:
            raise StudyConfigError(f"{p}: unknown configuration format; use .toml, .json or .yaml")
    except (ValueError, UnicodeDecodeError) as exc:  # tomllib/json errors are ValueErrors
        raise StudyConfigError(f"{p}: not valid {suffix[1:].upper()}: {exc}") from exc
    return StudyConfig.from_dict(data, str(p))
