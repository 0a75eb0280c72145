"""Running the study server: ``serve`` opens the study (never migrating it), warms up the
measuring code and hands the application to uvicorn, over TLS unless on the loopback address."""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from pathlib import Path

from ..endpoints import SegmentationSource
from ..study.errors import StudyError
from ..study.service import StudyService
from .app import TOKEN_LIFETIME, create_app

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warm_up() -> None:
    """Load and compile the measuring and writing code once (a small phantom, measured and saved
    to a temporary folder), so the first readers do not all wait for it at once."""
    from ..analysis import measure
    from ..forms import ReadForm
    from ..phantom import make_chest_phantom
    from ..readfile import save_read

    ph = make_chest_phantom((12, 48, 48), (6.0, 6.0, 10.0), seed=0)
    result = measure(ph.volume, ph.truth.astype("uint8"), backend="numpy",
                     source=SegmentationSource.CORRECTED)
    with tempfile.TemporaryDirectory(prefix="readerapp-warm-up-") as tmp:
        save_read(Path(tmp) / "read", volume=ph.volume, labels=result.labels, form=ReadForm.blank(False),
                  endpoints=result, source=SegmentationSource.CORRECTED)


def serve(db: str, storage: str | os.PathLike[str] | None, host: str = "127.0.0.1", port: int = 8443,
          tls_cert: str | None = None, tls_key: str | None = None,
          token_lifetime: dt.timedelta = TOKEN_LIFETIME,
          audit_key: str | os.PathLike[str] | None = None) -> None:
    """Open the study (never migrating it) and serve it until interrupted."""
    import uvicorn

    if bool(tls_cert) != bool(tls_key):
        raise StudyError("give both --tls-cert and --tls-key (or neither, on the loopback address only)")
    if not tls_cert:
        if not is_loopback(host):
            raise StudyError(f"refusing to serve the study on {host} without TLS: give --tls-cert and "
                             "--tls-key (plain HTTP is allowed on 127.0.0.1 only)")
        log.warning("serving plain HTTP on %s: only for this machine; use --tls-cert/--tls-key for a network",
                    host)
    service = StudyService(db, storage, migrate=False, audit_key=audit_key)
    app = create_app(service, token_lifetime=token_lifetime)
    warm_up()
    uvicorn.run(app, host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                log_level="warning", access_log=False)
