"""A DICOMweb node: QIDO-RS queries, WADO-RS retrieval instance by instance, STOW-RS sending.

Built on ``dicomweb-client``. Retrieval goes one instance at a time into a :class:`Staging`
folder, so an interrupted transfer resumes where it stopped; HTTP and network failures become
:class:`PacsError` messages that say what the site should check.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ..errors import PacsError
from ..progress import ProgressFn, no_progress
from ..settings import PacsNode, password_env_var
from .models import RetrieveResult, SendResult, SeriesHit, StudyHit, transport_warnings
from .staging import Staging

log = logging.getLogger(__name__)

_STUDY_FIELDS = (
    "StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber",
    "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
_SERIES_FIELDS = (
    "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
    "NumberOfSeriesRelatedInstances",
)


def _value(item: dict[str, Any], keyword: str) -> Any:
    """First value of a DICOM JSON attribute, or None."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    entry = item.get(f"{tag:08X}") or {}
    values = entry.get("Value") or []
    if not values:
        return None
    v = values[0]
    if isinstance(v, dict) and "Alphabetic" in v:
        return v["Alphabetic"]
    return v


def _values(item: dict[str, Any], keyword: str) -> tuple[str, ...]:
    from pydicom.datadict import tag_for_keyword

    entry = item.get(f"{tag_for_keyword(keyword):08X}") or {}
    return tuple(str(v) for v in entry.get("Value") or [])


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


_PAGE = 1000


def _paged(search: Any, limit: int | None = None, **kw: Any) -> list[dict[str, Any]]:
    """All results of a QIDO-RS search, page by page.

    ``dicomweb-client``'s own ``get_remaining`` loops forever against servers that ignore
    ``offset`` once it passes the end (Orthanc's plugin does); this stops on a short or repeated
    page.
    """
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        size = min(_PAGE, limit - len(out)) if limit else _PAGE
        page = search(limit=size, offset=offset or None, **kw)
        if out and page and page[0] == out[0]:
            break  # the server ignored offset
        out.extend(page)
        offset += len(page)
        if len(page) < size or (limit and len(out) >= limit):
            break
    return out


class DicomWebNode:
    """A configured DICOMweb server (``PacsNode(kind='dicomweb')``)."""

    #: Concurrent WADO-RS requests while retrieving a series.
    workers = 4

    def __init__(self, name: str, node: PacsNode, password: str | None = None) -> None:
        import requests
        from dicomweb_client.api import DICOMwebClient

        self.name = name
        self.node = node
        session = requests.Session()
        if node.username:
            session.auth = (node.username, password or "")
        session.verify = node.verify_tls
        self._session = session
        self.client = DICOMwebClient(url=node.url.rstrip("/"), session=session, timeout=node.timeout_s)
        # No silent retries: a timeout should take timeout_s, not a multiple of it; an interrupted
        # retrieve resumes where it stopped when asked again.
        self.client.set_http_retry_params(retry=False)
        self.warnings = transport_warnings(name, node)
        for w in self.warnings:
            log.warning("%s", w)

    # -- errors -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        import requests

        where = f"PACS {self.name!r} ({self.node.url})"
        try:
            yield
        except requests.exceptions.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            if code in (401, 403):
                hint = (
                    "refused the credentials: check the username and the password "
                    f"({password_env_var(self.name)} or 'readerapp settings password --pacs {self.name}')"
                )
            elif code == 404:
                hint = "answered 404 Not Found: unknown study/series or wrong DICOMweb URL"
            else:
                hint = f"answered HTTP {code} ({exc.response.reason if exc.response is not None else exc})"
            raise PacsError(f"{what}: {where} {hint}") from exc
        except requests.exceptions.Timeout as exc:
            raise PacsError(
                f"{what}: {where} did not answer within {self.node.timeout_s:g} s (timed out)"
            ) from exc
        except requests.exceptions.SSLError as exc:
            raise PacsError(f"{what}: TLS certificate check for {where} failed: {exc}") from exc
        except requests.exceptions.ConnectionError as exc:
            why = "connection refused" if "refused" in str(exc).lower() else "no route or name lookup failed"
            raise PacsError(
                f"{what}: cannot connect to {where} ({why}); check the URL and that the server runs"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise PacsError(f"{what}: request to {where} failed: {exc}") from exc

    # -- queries ----------------------------------------------------------------------------
    def echo(self) -> str:
        """Check reachability and credentials with the cheapest QIDO-RS query."""
        with self._errors("echo"):
            self.client.search_for_studies(limit=1, fields=["StudyInstanceUID"])
        return f"{self.name}: DICOMweb {self.node.url} answered"

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
        filters = {
            k: v for k, v in {
                "PatientID": patient_id, "PatientName": patient_name, "StudyDate": study_date,
                "AccessionNumber": accession_number, "StudyInstanceUID": study_uid,
                "ModalitiesInStudy": modality,
            }.items() if v
        }
        with self._errors("study query (QIDO-RS)"):
            items = _paged(
                self.client.search_for_studies, limit, search_filters=filters,
                fields=list(_STUDY_FIELDS),
            )
        return [
            StudyHit(
                study_uid=str(_value(i, "StudyInstanceUID") or ""),
                patient_id=str(_value(i, "PatientID") or ""),
                patient_name=str(_value(i, "PatientName") or ""),
                study_date=str(_value(i, "StudyDate") or ""),
                accession_number=str(_value(i, "AccessionNumber") or ""),
                description=str(_value(i, "StudyDescription") or ""),
                modalities=_values(i, "ModalitiesInStudy"),
                n_series=_int(_value(i, "NumberOfStudyRelatedSeries")),
                n_instances=_int(_value(i, "NumberOfStudyRelatedInstances")),
            )
            for i in items
        ]

    def find_series(self, study_uid: str, modality: str = "CT") -> list[SeriesHit]:
        filters = {"Modality": modality} if modality else {}
        with self._errors(f"series query (QIDO-RS) of study {study_uid}"):
            items = _paged(
                self.client.search_for_series, study_instance_uid=study_uid,
                search_filters=filters, fields=list(_SERIES_FIELDS),
            )
        return [
            SeriesHit(
                study_uid=study_uid,
                series_uid=str(_value(i, "SeriesInstanceUID") or ""),
                modality=str(_value(i, "Modality") or ""),
                series_number=str(_value(i, "SeriesNumber") or ""),
                description=str(_value(i, "SeriesDescription") or ""),
                n_instances=_int(_value(i, "NumberOfSeriesRelatedInstances")),
            )
            for i in items
        ]

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        with self._errors(f"instance query (QIDO-RS) of series {series_uid}"):
            items = _paged(
                self.client.search_for_instances, study_instance_uid=study_uid,
                series_instance_uid=series_uid, fields=["SOPInstanceUID"],
            )
        return [str(_value(i, "SOPInstanceUID")) for i in items if _value(i, "SOPInstanceUID")]

    # -- retrieve ---------------------------------------------------------------------------
    def retrieve_series(
        self, study_uid: str, series_uid: str, dest: Path, progress: ProgressFn = no_progress
    ) -> RetrieveResult:
        """WADO-RS, one instance at a time into ``dest``; instances already there are skipped."""
        progress(0.0, "listing the series' instances")
        expected = self.find_instances(study_uid, series_uid)
        if not expected:
            raise PacsError(
                f"PACS {self.name!r} has no series {series_uid} in study {study_uid} "
                "(unknown study or series)"
            )
        staging = Staging.for_series(dest, study_uid, series_uid, node=self.name)
        staging.expected = expected
        staging.write_manifest(route="wado-rs")
        todo = staging.missing()
        result = RetrieveResult(
            folder=staging.folder, study_uid=study_uid, series_uid=series_uid,
            expected=len(expected), skipped=len(expected) - len(todo),
        )
        def fetch(sop: str) -> None:
            with self._errors(f"retrieve (WADO-RS) of instance {sop}"):
                ds = self.client.retrieve_instance(
                    study_instance_uid=study_uid, series_instance_uid=series_uid,
                    sop_instance_uid=sop,
                )
            staging.write_dataset(ds, sop)  # refused unless it is the instance asked for

        # A few requests in flight hide the per-request latency; each file lands atomically,
        # so stopping at any point leaves a folder that the next call resumes.
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            futures = [pool.submit(fetch, sop) for sop in todo]
            for future in as_completed(futures):
                future.result()
                result.received += 1
                progress(result.received / len(todo),
                         f"retrieved {result.received} of {len(todo)} instances")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            staging.write_manifest(route="wado-rs")
        result.failed = staging.missing()  # complete only when every listed instance is here
        progress(1.0, f"{result.received} retrieved, {result.skipped} already present")
        return result

    # -- send -------------------------------------------------------------------------------
    def send(self, files: list[Path], progress: ProgressFn = no_progress) -> SendResult:
        """STOW-RS, one instance per request so a failure names its file."""
        import pydicom

        result = SendResult()
        for k, path in enumerate(files):
            progress(k / max(len(files), 1), f"sending {Path(path).name}")
            try:
                ds = pydicom.dcmread(path)
            except Exception as exc:
                raise PacsError(f"{path}: not a DICOM file that can be sent ({exc})") from exc
            with self._errors(f"send (STOW-RS) of {Path(path).name}"):
                response = self.client.store_instances(datasets=[ds])
            failed = getattr(response, "FailedSOPSequence", None)
            if failed:
                result.failed.append(str(path))
            else:
                result.sent += 1
        progress(1.0, f"{result.sent} sent")
        return result

    def close(self) -> None:
        self._session.close()
