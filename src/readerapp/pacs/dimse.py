"""A classic DICOM node over DIMSE (``pynetdicom``): C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE.

C-GET negotiates the storage SCP role for the SOP classes we accept, so the instances come back
on the same association; C-MOVE sends them to our own storage SCP, started in-process on the
configured port (the PACS must know our AE title, host and port). Both resume: the series'
instances are listed with C-FIND first, and only those missing from the staging folder are asked
for. Refused associations, closed ports and timeouts become :class:`PacsError` messages.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import PacsError
from ..progress import Cancelled, ProgressFn, no_progress
from ..settings import PacsNode
from .models import RetrieveResult, SendResult, SeriesHit, StudyHit, transport_warnings
from .staging import Staging

log = logging.getLogger(__name__)

#: Storage SOP classes we accept on C-GET and on our C-MOVE destination (CT and our results).
ACCEPTED_STORAGE = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR Storage
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR Storage
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR Storage
    "1.2.840.10008.5.1.4.1.1.88.67",  # X-Ray Radiation Dose SR Storage
)

#: Transfer syntaxes we accept: uncompressed first, then the lossless ones pydicom decodes.
ACCEPTED_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.5",  # RLE Lossless
)

_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Q/R Find
_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
_GET = "1.2.840.10008.5.1.4.1.2.2.3"
_VERIFICATION = "1.2.840.10008.1.1"


def _ds(**kw: Any) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _multi(v: Any) -> tuple[str, ...]:
    if v is None or v == "":
        return ()
    if isinstance(v, str):
        return (v,)
    return tuple(str(x) for x in v)


def _status_text(status: Any) -> str:
    code = getattr(status, "Status", None)
    comment = getattr(status, "ErrorComment", "")
    return f"status 0x{code:04X}{' ' + comment if comment else ''}" if code is not None else "no status"


class StorageSCP:
    """Our storage SCP for C-MOVE: writes each received instance into the current staging folder.

    One instance per process is enough: ``receive_into(staging)`` routes what arrives while a
    C-MOVE runs; anything arriving outside one is refused (status 0xA700... not accepted).
    """

    def __init__(self, ae_title: str, port: int, host: str = "", ssl_context: Any = None) -> None:
        #: A server TLS context (our certificate): the PACS then sends over TLS.
        self.ssl_context = ssl_context
        self.ae_title = ae_title
        self.port = port
        self.host = host
        self._server: Any = None
        self._target: Staging | None = None
        self._lock = threading.Lock()
        self.received = 0

    def _on_store(self, event: Any) -> int:
        with self._lock:
            target = self._target
        if target is None:
            return 0xA700  # out of resources: nobody asked for this
        try:
            sop = str(event.request.AffectedSOPInstanceUID)
            target.write_bytes(sop, bytes(event.encoded_dataset()))
        except Exception:
            return 0xA700
        with self._lock:
            self.received += 1
        return 0x0000

    def start(self) -> StorageSCP:
        from pynetdicom import AE, evt

        ae = AE(ae_title=self.ae_title)
        for uid in ACCEPTED_STORAGE:
            ae.add_supported_context(uid, list(ACCEPTED_SYNTAXES))
        ae.add_supported_context(_VERIFICATION)
        try:
            self._server = ae.start_server(
                (self.host, self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_store)],
                ssl_context=self.ssl_context,
            )
        except OSError as exc:
            raise PacsError(
                f"cannot start our storage SCP on port {self.port} ({exc.strerror}); "
                "choose another with 'readerapp settings set storage_port PORT' and register it "
                "at the PACS"
            ) from exc
        return self

    @contextmanager
    def receive_into(self, staging: Staging) -> Iterator[None]:
        with self._lock:
            self._target, self.received = staging, 0
        try:
            yield
        finally:
            with self._lock:
                self._target = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> StorageSCP:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DimseNode:
    """A configured DICOM node (``PacsNode(kind='dimse')``)."""

    def __init__(
        self, name: str, node: PacsNode, *, local_ae_title: str = "READERAPP", storage_port: int = 11113
    ) -> None:
        self.name = name
        self.node = node
        self.local_ae_title = local_ae_title
        self.storage_port = storage_port
        self._scp: StorageSCP | None = None
        self.warnings = transport_warnings(name, node)
        for w in self.warnings:
            log.warning("%s", w)

    @property
    def where(self) -> str:
        n = self.node
        return f"PACS {self.name!r} ({n.ae_title}@{n.host}:{n.port})"

    # -- associations -----------------------------------------------------------------------
    def _tls_context(self) -> Any:
        """A client TLS context: the PACS's certificate checked against ``tls_ca_file`` (or the
        system's CAs) and its host name, unless ``verify_tls`` is off (warned about)."""
        import ssl

        n = self.node
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=n.tls_ca_file or None)
            if n.tls_cert_file:
                ctx.load_cert_chain(n.tls_cert_file, n.tls_key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise PacsError(f"{self.where}: cannot set up TLS ({exc}); check tls_ca_file, "
                            "tls_cert_file and tls_key_file") from exc
        if not n.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _server_tls_context(self) -> Any:
        """Our storage SCP's TLS context for C-MOVE (our certificate; the PACS's checked against
        ``tls_ca_file`` when given); None without TLS."""
        import ssl

        n = self.node
        if not n.tls:
            return None
        if not n.tls_cert_file:
            raise PacsError(f"{self.where}: C-MOVE over TLS needs our own certificate: set "
                            f"pacs.{self.name}.tls_cert_file and tls_key_file, or use C-GET")
        try:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=n.tls_ca_file or None)
            ctx.load_cert_chain(n.tls_cert_file, n.tls_key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise PacsError(f"{self.where}: cannot set up TLS for our storage SCP ({exc})") from exc
        ctx.verify_mode = ssl.CERT_REQUIRED if n.tls_ca_file and n.verify_tls else ssl.CERT_NONE
        return ctx

    def _check_port(self) -> None:
        try:
            with socket.create_connection((self.node.host, int(self.node.port)), timeout=self.node.timeout_s):
                pass
        except TimeoutError as exc:
            raise PacsError(
                f"{self.where}: no TCP connection within {self.node.timeout_s:g} s (timed out); "
                "check host, port and firewall"
            ) from exc
        except OSError as exc:
            raise PacsError(
                f"{self.where}: cannot connect ({exc.strerror or exc}); check host, port and that "
                "the PACS's DICOM service is running"
            ) from exc

    @contextmanager
    def _association(
        self, contexts: list[tuple[str, list[str] | None]], roles: Sequence[str] = (),
        handlers: list[tuple[Any, Callable[..., Any]]] | None = None,
    ) -> Iterator[Any]:
        from pynetdicom import AE, build_role, evt

        self._check_port()
        ae = AE(ae_title=self.local_ae_title)
        t = float(self.node.timeout_s)
        ae.acse_timeout = t
        ae.dimse_timeout = t
        ae.network_timeout = t
        ae.connection_timeout = t
        for uid, syntaxes in contexts:
            if syntaxes:
                ae.add_requested_context(uid, syntaxes)
            else:
                ae.add_requested_context(uid)
        rejection: list[str] = []

        def on_reject(event: Any) -> None:
            p = event.assoc.acceptor.primitive if hasattr(event.assoc, "acceptor") else None
            rejection.append(str(getattr(p, "reason_str", "") or ""))

        all_handlers = list(handlers or []) + [(evt.EVT_REJECTED, on_reject)]
        ext: list[Any] = [build_role(uid, scp_role=True) for uid in roles]
        assoc = ae.associate(
            self.node.host, int(self.node.port), ae_title=self.node.ae_title,
            ext_neg=ext or None, evt_handlers=all_handlers,
            tls_args=(self._tls_context(), self.node.host) if self.node.tls else None,
        )
        if not assoc.is_established:
            if assoc.is_rejected:
                why = f" ({rejection[0]})" if rejection and rejection[0] else ""
                raise PacsError(
                    f"{self.where} refused the association{why}: check that its AE title is "
                    f"{self.node.ae_title!r} and that it accepts our AE title {self.local_ae_title!r}"
                )
            raise PacsError(
                f"{self.where}: no association within {t:g} s (timed out or aborted); check that "
                "the port is the PACS's DICOM port and that it accepts our AE title "
                f"{self.local_ae_title!r}"
            )
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _responses(self, gen: Any, what: str) -> Iterator[tuple[Any, Any]]:
        """Pass on a DIMSE response generator, turning a lost or timed-out association into PacsError."""
        for status, identifier in gen:
            if not status:  # empty Dataset: timeout, abort or invalid response
                raise PacsError(
                    f"{what}: {self.where} stopped answering (timed out after "
                    f"{self.node.timeout_s:g} s or aborted)"
                )
            yield status, identifier

    # -- operations -------------------------------------------------------------------------
    def echo(self) -> str:
        with self._association([(_VERIFICATION, None)]) as assoc:
            status = assoc.send_c_echo()
        if not status or status.Status != 0:
            raise PacsError(f"C-ECHO: {self.where} answered {_status_text(status)}")
        return f"{self.name}: C-ECHO to {self.node.ae_title}@{self.node.host}:{self.node.port} succeeded"

    def _find(self, query: Any, what: str) -> list[Any]:
        out = []
        with self._association([(_FIND, None)]) as assoc:
            for status, identifier in self._responses(assoc.send_c_find(query, _FIND), what):
                if status.Status in (0xFF00, 0xFF01):
                    if identifier is not None:
                        out.append(identifier)
                elif status.Status != 0x0000:
                    raise PacsError(f"{what}: {self.where} answered {_status_text(status)}")
        return out

    def find_studies(
        self,
        *,
        patient_id: str = "",
        patient_name: str = "",
        study_date: str = "",
        accession_number: str = "",
        study_uid: str = "",
        modality: str = "CT",
        limit: int | None = None,
    ) -> list[StudyHit]:
        q = _ds(
            QueryRetrieveLevel="STUDY", StudyInstanceUID=study_uid, PatientID=patient_id,
            PatientName=patient_name, StudyDate=study_date, AccessionNumber=accession_number,
            ModalitiesInStudy=modality, StudyDescription="", NumberOfStudyRelatedSeries="",
            NumberOfStudyRelatedInstances="",
        )
        hits = [
            StudyHit(
                study_uid=str(r.get("StudyInstanceUID", "")),
                patient_id=str(r.get("PatientID", "")),
                patient_name=str(r.get("PatientName", "")),
                study_date=str(r.get("StudyDate", "")),
                accession_number=str(r.get("AccessionNumber", "")),
                description=str(r.get("StudyDescription", "")),
                modalities=_multi(r.get("ModalitiesInStudy")),
                n_series=_int(r.get("NumberOfStudyRelatedSeries")),
                n_instances=_int(r.get("NumberOfStudyRelatedInstances")),
            )
            for r in self._find(q, "study query (C-FIND)")
        ]
        return hits[:limit] if limit else hits

    def find_series(self, study_uid: str, modality: str = "CT") -> list[SeriesHit]:
        q = _ds(
            QueryRetrieveLevel="SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID="",
            Modality=modality, SeriesNumber="", SeriesDescription="",
            NumberOfSeriesRelatedInstances="",
        )
        return [
            SeriesHit(
                study_uid=study_uid,
                series_uid=str(r.get("SeriesInstanceUID", "")),
                modality=str(r.get("Modality", "")),
                series_number=str(r.get("SeriesNumber", "")),
                description=str(r.get("SeriesDescription", "")),
                n_instances=_int(r.get("NumberOfSeriesRelatedInstances")),
            )
            for r in self._find(q, f"series query (C-FIND) of study {study_uid}")
        ]

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        q = _ds(
            QueryRetrieveLevel="IMAGE", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid,
            SOPInstanceUID="",
        )
        found = self._find(q, f"instance query (C-FIND) of series {series_uid}")
        return [str(r.SOPInstanceUID) for r in found if r.get("SOPInstanceUID")]

    def _plan(self, study_uid: str, series_uid: str, dest: Path, route: str) -> tuple[Staging, Any, RetrieveResult]:
        expected = self.find_instances(study_uid, series_uid)
        if not expected:
            raise PacsError(
                f"{self.where} has no series {series_uid} in study {study_uid} "
                "(unknown study or series)"
            )
        staging = Staging.for_series(dest, study_uid, series_uid, node=self.name)
        staging.expected = expected
        staging.write_manifest(route=route)
        todo = staging.missing()
        result = RetrieveResult(
            folder=staging.folder, study_uid=study_uid, series_uid=series_uid,
            expected=len(expected), skipped=len(expected) - len(todo),
        )
        if not todo:
            query = None
        elif len(todo) == len(expected):
            query = _ds(QueryRetrieveLevel="SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid)
        else:  # resume: ask only for what is missing (list of UID matching, PS3.4 C.2.2.2.2)
            query = _ds(
                QueryRetrieveLevel="IMAGE", StudyInstanceUID=study_uid,
                SeriesInstanceUID=series_uid, SOPInstanceUID=todo,
            )
        return staging, query, result

    def _run_retrieve(
        self, responses: Iterator[tuple[Any, Any]], assoc: Any, staging: Staging, result: RetrieveResult,
        todo: int, what: str, progress: ProgressFn,
    ) -> None:
        before = staging.present()
        last: Any = None
        try:
            for status, _identifier in self._responses(responses, what):
                last = status
                done = int(status.get("NumberOfCompletedSuboperations", 0) or 0)
                if status.Status == 0xFF00:
                    progress(min(done / max(todo, 1), 1.0), f"{what}: {done} of {todo} instances")
        except Cancelled:
            assoc.abort()
            raise
        finally:
            staging.write_manifest(route=what)
        now = staging.present()
        result.received = len((now - before) & set(staging.expected))
        result.failed = staging.missing()
        if last is not None and last.Status not in (0x0000, 0xB000):
            raise PacsError(
                f"{what}: {self.where} answered {_status_text(last)} "
                f"({result.received} of {todo} instances arrived)"
            )

    def get_series(
        self, study_uid: str, series_uid: str, dest: Path, progress: ProgressFn = no_progress
    ) -> RetrieveResult:
        """C-GET: the instances come back on our association (storage SCP role negotiated)."""
        from pynetdicom import evt

        progress(0.0, "listing the series' instances (C-FIND)")
        staging, query, result = self._plan(study_uid, series_uid, dest, "c-get")
        if query is None:
            progress(1.0, "all instances already present")
            return result
        todo = result.expected - result.skipped

        def on_store(event: Any) -> int:
            try:
                staging.write_bytes(str(event.request.AffectedSOPInstanceUID), bytes(event.encoded_dataset()))
            except Exception:
                return 0xA700
            return 0x0000

        contexts: list[tuple[str, list[str] | None]] = [(_GET, None)]
        contexts += [(uid, list(ACCEPTED_SYNTAXES)) for uid in ACCEPTED_STORAGE]
        with self._association(contexts, roles=list(ACCEPTED_STORAGE),
                               handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
            self._run_retrieve(assoc.send_c_get(query, _GET), assoc, staging, result, todo,
                               "C-GET", progress)
        progress(1.0, f"{result.received} retrieved, {result.skipped} already present")
        return result

    def move_series(
        self, study_uid: str, series_uid: str, dest: Path, progress: ProgressFn = no_progress
    ) -> RetrieveResult:
        """C-MOVE to our own storage SCP (``local_ae_title`` on ``storage_port``)."""
        progress(0.0, "listing the series' instances (C-FIND)")
        staging, query, result = self._plan(study_uid, series_uid, dest, "c-move")
        if query is None:
            progress(1.0, "all instances already present")
            return result
        todo = result.expected - result.skipped
        own = self._scp is None
        scp = self._scp or StorageSCP(self.local_ae_title, self.storage_port,
                                      ssl_context=self._server_tls_context()).start()
        try:
            with scp.receive_into(staging), self._association([(_MOVE, None)]) as assoc:
                self._run_retrieve(
                    assoc.send_c_move(query, self.local_ae_title, _MOVE), assoc, staging, result,
                    todo, "C-MOVE", progress,
                )
        finally:
            if own:
                scp.stop()
        if result.received == 0 and todo:
            raise PacsError(
                f"C-MOVE: {self.where} sent nothing to {self.local_ae_title}:{self.storage_port}; "
                "register our AE title, host and port at the PACS"
            )
        progress(1.0, f"{result.received} retrieved, {result.skipped} already present")
        return result

    def retrieve_series(
        self, study_uid: str, series_uid: str, dest: Path, progress: ProgressFn = no_progress,
        route: str = "get",
    ) -> RetrieveResult:
        if route == "move":
            return self.move_series(study_uid, series_uid, dest, progress)
        return self.get_series(study_uid, series_uid, dest, progress)

    def send(self, files: list[Path], progress: ProgressFn = no_progress) -> SendResult:
        """C-STORE each file, proposing its own SOP class and transfer syntax."""
        import pydicom

        datasets = []
        for path in files:
            try:
                datasets.append((Path(path), pydicom.dcmread(path)))
            except Exception as exc:
                raise PacsError(f"{path}: not a DICOM file that can be sent ({exc})") from exc
        contexts: dict[str, set[str]] = {}
        for _p, ds in datasets:
            syntaxes = contexts.setdefault(str(ds.SOPClassUID), set())
            syntaxes.add(str(ds.file_meta.TransferSyntaxUID))
        requested = [(uid, sorted(ts | {"1.2.840.10008.1.2.1"})) for uid, ts in contexts.items()]
        result = SendResult()
        with self._association(requested) as assoc:  # type: ignore[arg-type]
            for k, (path, ds) in enumerate(datasets):
                progress(k / max(len(datasets), 1), f"sending {path.name}")
                try:
                    status = assoc.send_c_store(ds)
                except ValueError as exc:  # no accepted context for this SOP class
                    raise PacsError(f"C-STORE of {path.name}: {self.where} accepts no {exc}") from exc
                if not status:
                    raise PacsError(f"C-STORE of {path.name}: {self.where} stopped answering (timed out)")
                if status.Status in (0x0000, 0xB000, 0xB007, 0xB006):
                    result.sent += 1
                else:
                    result.failed.append(f"{path}: {_status_text(status)}")
        progress(1.0, f"{result.sent} sent")
        return result

    def close(self) -> None:
        if self._scp is not None:
            self._scp.stop()
            self._scp = None
