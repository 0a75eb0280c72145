"""Program settings: where the study database and the PACS nodes are, kept out of the code.

Settings are a small JSON file in the folder each platform expects (``platformdirs``, named as
``readerapp.study.db`` names the data folder: ``~/.config/ReaderApp`` on Linux,
``%LOCALAPPDATA%\\ReaderApp\\ReaderApp`` on Windows, ``~/Library/Application Support/ReaderApp``
on macOS). Three layers are merged, later winning:

1. the embedded defaults below (a local SQLite study in the user's data folder, no PACS),
2. a site-wide file that IT may deploy once per machine (``site_config_dir``, e.g.
   ``/etc/xdg/ReaderApp/settings.json``),
3. the user's file, written by the first-run dialog and ``readerapp settings set``.

Passwords never go into the settings file: they come from environment variables
(``READERAPP_PACS_PASSWORD_<NODE>``, ``READERAPP_DATABASE_PASSWORD``) or from a separate
``credentials.json`` beside the settings, which is written with 0600 permissions and refused when
other users may read it. ``READERAPP_CONFIG_DIR``, ``READERAPP_SITE_CONFIG_DIR`` and
``READERAPP_DATA_DIR`` move the folders (tests, portable installs).
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from . import __version__
from .errors import ReaderAppError
from .fileio import atomic_write, atomic_write_text

APP_NAME = "ReaderApp"
SETTINGS_FILE = "settings.json"
CREDENTIALS_FILE = "credentials.json"

NodeKind = Literal["dicomweb", "dimse"]


class SettingsError(ReaderAppError):
    """The settings or credentials file cannot be read, or a value is not valid."""


@dataclass
class PacsNode:
    """One PACS (or other DICOM node) the site reads from and sends results to.

    A DICOMweb node needs ``url``; a classic DIMSE node needs ``host``, ``port`` and
    ``ae_title`` (the called AE title). ``username`` is for DICOMweb's HTTP basic
    authentication; its password comes from :func:`pacs_password`.
    """

    kind: NodeKind = "dicomweb"
    url: str = ""
    host: str = ""
    port: int = 104
    ae_title: str = ""
    username: str = ""
    timeout_s: float = 30.0
    verify_tls: bool = True
    #: DIMSE over TLS (PS3.15 Annex B): ``tls`` on, the CA file that signed the PACS's
    #: certificate, and our own certificate and key where the PACS asks for them.
    tls: bool = False
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""

    def describe(self) -> str:
        if self.kind == "dicomweb":
            user = f" as {self.username}" if self.username else ""
            return f"DICOMweb {self.url}{user}"
        return f"DIMSE {self.ae_title}@{self.host}:{self.port}"

    def check(self, name: str) -> None:
        """Refuse an incomplete node with a message naming what to set."""
        if self.kind not in ("dicomweb", "dimse"):
            raise SettingsError(f"PACS node {name!r}: kind must be 'dicomweb' or 'dimse', not {self.kind!r}")
        if self.kind == "dicomweb" and not self.url:
            raise SettingsError(f"PACS node {name!r}: set its url (readerapp settings set pacs.{name}.url URL)")
        if self.kind == "dimse":
            missing = [k for k in ("host", "ae_title") if not getattr(self, k)]
            if missing:
                raise SettingsError(
                    f"PACS node {name!r}: set {', '.join(missing)} "
                    f"(readerapp settings set pacs.{name}.{missing[0]} VALUE)"
                )
            if not 0 < int(self.port) < 65536:
                raise SettingsError(f"PACS node {name!r}: port {self.port} is not a TCP port")


@dataclass
class Settings:
    """Everything a site configures. Empty strings mean 'use the embedded default'."""

    #: SQLAlchemy URL of the study database, without a password; empty: local SQLite.
    database_url: str = ""
    #: The study's shared file folder, for a server database (SQLite keeps its files beside it).
    study_storage: str = ""
    #: A study server (``https://host:port``, ``readerapp server run``): when set, the study
    #: window and the study commands log in there with the user's own name and password and
    #: need no database URL or study folder on this machine.
    study_server: str = ""
    #: CA certificate (PEM) that signed the study server's certificate; empty: the system's.
    study_server_ca: str = ""
    #: The settings' study's audit key file (docs/STUDY.md, "The audit key"); empty: beside the
    #: study, or ``READERAPP_AUDIT_KEY``.
    audit_key_file: str = ""
    #: Where retrieved series are staged before import; empty: ``<data dir>/pacs-staging``.
    staging_dir: str = ""
    #: Our own AE title (calling AE, and the C-MOVE destination the PACS must know).
    local_ae_title: str = "READERAPP"
    #: Port of our in-process storage SCP for C-MOVE (the PACS must have it registered).
    storage_port: int = 11113
    #: Node used when a command names none.
    default_pacs: str = ""
    pacs: dict[str, PacsNode] = field(default_factory=dict)
    #: Which program version last wrote the file (informational).
    readerapp_version: str = __version__

    # -- derived values -------------------------------------------------------------------
    def effective_database_url(self) -> str:
        """The URL to connect with: the configured one plus its password, or local SQLite.

        ``READERAPP_DATABASE_URL`` overrides everything (CI, containers).
        """
        env = os.environ.get("READERAPP_DATABASE_URL")
        if env:
            return env
        if not self.database_url:
            return "sqlite:///" + (data_dir() / "study" / "study.sqlite").as_posix()
        password = database_password()
        if password is None:
            return self.database_url
        from sqlalchemy.engine import make_url  # lazy: settings stay cheap to import

        return make_url(self.database_url).set(password=password).render_as_string(
            hide_password=False
        )

    def effective_study_storage(self) -> str | None:
        """The study's file folder for a server database; None: the study workflow's default."""
        return str(Path(self.study_storage).expanduser()) if self.study_storage else None

    def effective_staging_dir(self) -> Path:
        return Path(self.staging_dir).expanduser() if self.staging_dir else data_dir() / "pacs-staging"

    def node(self, name: str | None = None) -> tuple[str, PacsNode]:
        """The named node, or the default one; a clear error when there is none."""
        name = name or self.default_pacs or (next(iter(self.pacs)) if len(self.pacs) == 1 else "")
        if not name:
            if not self.pacs:
                raise SettingsError(
                    "no PACS is configured: add one with "
                    "'readerapp pacs add NAME --url URL' or '--host HOST --port PORT --ae AE'"
                )
            raise SettingsError(f"several PACS nodes are configured ({', '.join(self.pacs)}): name one")
        if name not in self.pacs:
            known = ", ".join(self.pacs) or "none"
            raise SettingsError(f"unknown PACS node {name!r} (configured: {known})")
        node = self.pacs[name]
        node.check(name)
        return name, node

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["readerapp_version"] = __version__
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "settings") -> Settings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"{source}: unknown setting(s) {', '.join(unknown)}")
        values = dict(data)
        nodes = {}
        for name, raw in (values.pop("pacs", None) or {}).items():
            if not isinstance(raw, dict):
                raise SettingsError(f"{source}: pacs.{name} must be a table of values")
            node_fields = {f.name for f in fields(PacsNode)}
            bad = sorted(set(raw) - node_fields)
            if bad:
                raise SettingsError(f"{source}: pacs.{name}: unknown key(s) {', '.join(bad)}")
            nodes[name] = PacsNode(**raw)
        try:
            s = cls(**values, pacs=nodes)
            s.storage_port = int(s.storage_port)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{source}: {exc}") from exc
        return s


# -- locations --------------------------------------------------------------------------------
def config_dir() -> Path:
    """The user's settings folder (``READERAPP_CONFIG_DIR`` overrides)."""
    env = os.environ.get("READERAPP_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


def site_config_dir() -> Path:
    """The machine-wide settings folder IT may deploy (``READERAPP_SITE_CONFIG_DIR`` overrides)."""
    env = os.environ.get("READERAPP_SITE_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.site_config_dir(APP_NAME))


def data_dir() -> Path:
    """The user's data folder: the local SQLite study, staged series (``READERAPP_DATA_DIR``)."""
    env = os.environ.get("READERAPP_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))  # as readerapp.study.db does


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def credentials_path() -> Path:
    return config_dir() / CREDENTIALS_FILE


# -- load and save ----------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except OSError as exc:
        raise SettingsError(f"{path}: cannot be read ({exc.strerror})") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: must hold a JSON object")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def is_first_run() -> bool:
    """True where neither the user nor IT has configured anything yet."""
    return not settings_path().is_file() and not (site_config_dir() / SETTINGS_FILE).is_file()


def load_settings(path: Path | None = None) -> Settings:
    """Embedded defaults, then the site file, then the user's (or ``path``) on top."""
    merged: dict[str, Any] = {}
    source = "defaults"
    layers = [site_config_dir() / SETTINGS_FILE, path or settings_path()]
    for layer in layers:
        if layer.is_file():
            merged = _merge(merged, _read_json(layer))
            source = str(layer)
    merged.pop("readerapp_version", None)
    return Settings.from_dict(merged, source=source)


def _diff(current: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in current.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            sub = _diff(v, base[k])
            if sub:
                out[k] = sub
        elif k not in base or base[k] != v:
            out[k] = v
    return out


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the user's settings file atomically; returns its path.

    Only what differs from the embedded defaults and the site-wide file is written, so a later
    change IT makes to the site file still reaches this user.
    """
    for name, node in settings.pacs.items():
        node.check(name)
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    site = site_config_dir() / SETTINGS_FILE
    base = _merge(Settings().to_dict(), _read_json(site) if site.is_file() else {})
    base["pacs"] = {
        name: _merge(asdict(PacsNode()), raw) if isinstance(raw, dict) else raw
        for name, raw in (base.get("pacs") or {}).items()
    }
    data = _diff(settings.to_dict(), base)
    data["readerapp_version"] = __version__
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


# -- credentials ------------------------------------------------------------------------------
def password_env_var(node: str) -> str:
    """The environment variable holding a PACS node's password."""
    return "READERAPP_PACS_PASSWORD_" + re.sub(r"[^A-Za-z0-9]", "_", node).upper()


def _read_credentials() -> dict[str, Any]:
    path = credentials_path()
    if not path.is_file():
        return {}
    if sys.platform != "win32":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise SettingsError(
                f"{path}: other users may read it (mode {mode:o}); run 'chmod 600 {path}'"
            )
    return _read_json(path)


def pacs_password(node: str) -> str | None:
    """The password of a PACS node: ``READERAPP_PACS_PASSWORD_<NODE>``, else credentials.json."""
    env = os.environ.get(password_env_var(node))
    if env is not None:
        return env
    value = (_read_credentials().get("pacs") or {}).get(node)
    return str(value) if value is not None else None


def database_password() -> str | None:
    """The database password: ``READERAPP_DATABASE_PASSWORD``, else credentials.json."""
    env = os.environ.get("READERAPP_DATABASE_PASSWORD")
    if env is not None:
        return env
    value = _read_credentials().get("database")
    return str(value) if value is not None else None


def store_password(kind: Literal["pacs", "database"], password: str, node: str = "") -> Path:
    """Keep a password in credentials.json (0600), never in the settings file."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    creds = _read_credentials() if path.is_file() else {}
    if kind == "pacs":
        if not node:
            raise SettingsError("store_password('pacs', ...) needs the node's name")
        creds.setdefault("pacs", {})[node] = password
    else:
        creds["database"] = password

    def write(tmp: Path) -> None:  # the temporary file is 0600 from its creation (mkstemp)
        os.chmod(tmp, 0o600)
        tmp.write_text(json.dumps(creds, indent=2), encoding="utf-8")

    return atomic_write(path, write)


# -- editing one value (``readerapp settings set``) ------------------------------------------
def set_value(settings: Settings, key: str, value: str) -> Settings:
    """Set ``key`` (dotted, e.g. ``database_url`` or ``pacs.main.port``) from a string.

    Strings are converted to the field's type; ``pacs.NAME.kind`` creates the node if needed.
    """
    parts = key.split(".")
    if parts[0] == "pacs":
        if len(parts) != 3:
            raise SettingsError(f"{key!r}: PACS keys look like pacs.NAME.FIELD")
        name, attr = parts[1], parts[2]
        node = settings.pacs.setdefault(name, PacsNode())
        target: Any = node
        kinds = {f.name: f.type for f in fields(PacsNode)}
    else:
        if len(parts) != 1:
            raise SettingsError(f"unknown setting {key!r}")
        attr = parts[0]
        target = settings
        kinds = {f.name: f.type for f in fields(Settings) if f.name not in ("pacs", "readerapp_version")}
    if attr not in kinds:
        raise SettingsError(f"unknown setting {key!r} (known: {', '.join(sorted(kinds))})")
    if attr == "password":
        raise SettingsError("passwords are not settings: use 'readerapp settings password'")
    current = getattr(target, attr)
    try:
        if isinstance(current, bool):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"expected true or false, got {value!r}")
            converted: Any = value.lower() in ("true", "1", "yes")
        elif isinstance(current, int):
            converted = int(value)
        elif isinstance(current, float):
            converted = float(value)
        else:
            converted = value
    except ValueError as exc:
        raise SettingsError(f"{key}: {exc}") from exc
    if attr == "database_url" and converted and "@" in converted.split("//", 1)[-1].split("/", 1)[0]:
        host_part = converted.split("//", 1)[-1].split("@", 1)[0]
        if ":" in host_part:
            raise SettingsError(
                "database_url must not hold a password: set READERAPP_DATABASE_PASSWORD or use "
                "'readerapp settings password --database'"
            )
    setattr(target, attr, converted)
    return settings
