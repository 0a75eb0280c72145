"""The audit key: a secret outside the database that authenticates the audit trail.

The hash chain alone (SHA-256, no key) shows that the trail is self-consistent, but anyone who can
write the database can rewrite a record and re-chain every later one with the program's own
functions. So every record also carries ``mac`` = HMAC-SHA256(key, seq and hash), and the chain's
head row carries a MAC of its own (it would otherwise let a truncation pass). The key lives in a
small JSON file (mode 0600) that the database does not hold:

* ``READERAPP_AUDIT_KEY`` (a path) or ``--audit-key PATH`` names it;
* otherwise it lies beside the study: ``NAME.audit-key`` next to an SQLite ``NAME.sqlite``, or
  ``FOLDER.audit-key`` next to a server study's shared storage folder ``FOLDER``.

The file also says from which record on the trail is keyed (``legacy_before``): a study created
before the key existed keeps its older records, which are checked by the hash chain only and
reported as legacy; every later record must carry a valid MAC.

The same secret derives an Ed25519 signing key (via the ``cryptography`` package). An *anchor* is
the chain head (sequence number and hash) signed with it; the sponsor keeps anchors (printed by
``readerapp audit anchor`` and written into every export), and ``audit verify --anchor`` then
proves that the first N records are the ones the sponsor saw, even to someone without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from .errors import StudyError

KEY_ENV = "READERAPP_AUDIT_KEY"
KEY_FORMAT = "readerapp-audit-key/1"
ANCHOR_PREFIX = "RA-ANCHOR-1"


class AuditKeyError(StudyError):
    """The audit key is missing, unreadable or belongs to another study."""


def default_key_path(url: str, storage: Path) -> Path:
    """Where a study's key file is looked for when neither the option nor the variable names it."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env).expanduser().resolve()
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        p = Path(u.database)
        return p.with_name(p.stem + ".audit-key")
    return storage.with_name(storage.name + ".audit-key")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class AuditKey:
    secret: bytes
    #: The first sequence number the key authenticates (records before it are legacy).
    legacy_before: int
    created_at: str
    path: Path | None = None

    @property
    def key_id(self) -> str:
        """A public name of the key (not the key): stored in the head row, printed in anchors."""
        return hashlib.sha256(b"readerapp audit key id\0" + self.secret).hexdigest()[:32]

    def _hmac(self, label: str, text: str) -> str:
        return hmac.new(self.secret, f"{label}\0{text}".encode(), hashlib.sha256).hexdigest()

    def record_mac(self, seq: int, rec_hash: str) -> str:
        return self._hmac("record", f"{seq}:{rec_hash}")

    def head_mac(self, seq: int, head_hash: str) -> str:
        return self._hmac("head", f"{seq}:{head_hash}")

    def keyed_hash(self, text: str) -> str:
        """A keyed hash of a value that must not be stored as such (a mistyped user name)."""
        return self._hmac("name", text)[:24]

    # --- anchors (Ed25519) -------------------------------------------------------------------
    def _signing_key(self) -> Any:
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        except ImportError as exc:  # pragma: no cover - a dependency
            raise AuditKeyError("signing an audit anchor needs the cryptography package "
                                "(pip install cryptography)") from exc
        seed = hmac.new(self.secret, b"readerapp audit anchor ed25519", hashlib.sha256).digest()
        return Ed25519PrivateKey.from_private_bytes(seed)

    def public_key_hex(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self._signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def sign_anchor(self, *, study: str, seq: int, head_hash: str, ts: str) -> str:
        payload = {"v": 1, "study": study, "key_id": self.key_id, "seq": seq, "hash": head_hash,
                   "ts": ts, "pub": self.public_key_hex()}
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        sig = self._signing_key().sign(body)
        return f"{ANCHOR_PREFIX}.{_b64(body)}.{_b64(sig)}"

    def to_json(self) -> str:
        return json.dumps({"format": KEY_FORMAT, "secret": self.secret.hex(), "key_id": self.key_id,
                           "legacy_before": self.legacy_before, "created_at": self.created_at},
                          indent=2) + "\n"


@dataclass(frozen=True)
class Anchor:
    study: str
    key_id: str
    seq: int
    hash: str
    ts: str
    pub: str


def parse_anchor(text: str) -> Anchor:
    """Check an anchor's Ed25519 signature (by the public key it names) and return its content.

    Whether that public key is the study's is for the caller to check (with the key, or against
    the public key the sponsor wrote down)."""
    text = text.strip()
    parts = text.split(".")
    if len(parts) != 3 or parts[0] != ANCHOR_PREFIX:
        raise AuditKeyError(f"not an audit anchor (expected text starting with {ANCHOR_PREFIX}.)")
    try:
        body, sig = _unb64(parts[1]), _unb64(parts[2])
        d = json.loads(body)
        anchor = Anchor(study=str(d["study"]), key_id=str(d["key_id"]), seq=int(d["seq"]),
                        hash=str(d["hash"]), ts=str(d["ts"]), pub=str(d["pub"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditKeyError(f"the audit anchor is damaged ({exc})") from exc
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(anchor.pub)).verify(sig, body)
    except (InvalidSignature, ValueError) as exc:
        raise AuditKeyError("the audit anchor's signature is not valid (the anchor was altered)") from exc
    return anchor


def load_key(path: Path) -> AuditKey | None:
    """The key in ``path``, or None when there is no such file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditKeyError(f"{path}: cannot read the audit key ({exc.strerror})") from exc
    try:
        d = json.loads(raw)
        if d.get("format") != KEY_FORMAT:
            raise ValueError(f"format {d.get('format')!r}")
        key = AuditKey(secret=bytes.fromhex(d["secret"]), legacy_before=int(d["legacy_before"]),
                       created_at=str(d["created_at"]), path=path)
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditKeyError(f"{path}: not a ReaderApp audit key ({exc})") from exc
    if len(key.secret) != 32:
        raise AuditKeyError(f"{path}: the audit key must hold 32 bytes")
    return key


def create_key(path: Path, legacy_before: int, created_at: str) -> AuditKey:
    """Write a new random key to ``path`` (mode 0600, never over an existing file)."""
    from ..fileio import fsync_dir

    key = AuditKey(secret=secrets.token_bytes(32), legacy_before=legacy_before,
                   created_at=created_at, path=path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise AuditKeyError(
            f"{path} already exists: an audit key of another study? Move it away, or name another "
            f"file with --audit-key or {KEY_ENV}"
        ) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o600)
    fsync_dir(path.parent)
    return key
