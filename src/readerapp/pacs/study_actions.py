"""The PACS use cases of a blinded study, written once for the command line and the window.

``retrieve_into_study`` brings one series from a PACS into the study (de-identified on arrival,
the identifiable staged copy removed); ``send_final_reads`` sends a case's final read(s) back to
the PACS as SEG + SR against the original series and records the send in the audit trail. Both
take the study backend the caller uses (the local :class:`~readerapp.study.service.StudyService`
or a :class:`~readerapp.server.client.StudyClient` on a study server: the same methods) and a
logged-in actor; the rules (who may import, who may see original UIDs) are the study's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PacsError
from ..progress import ProgressFn, no_progress
from .models import PacsClient, RetrieveResult, SendResult
from .pull import ReadToSend, import_series, retrieve_series, send_reads


def refuse_duplicate(service: Any, actor: Any, subject: str, visit: str) -> None:
    """Refuse, before any transfer, a subject and visit the study already holds."""
    done = [o.code for o in service.case_originals(actor) if (o.subject, o.visit) == (subject, visit)]
    if done:
        raise PacsError(f"subject {subject} visit {visit} was imported before (case {done[0]})")


def retrieve_into_study(
    client: PacsClient, service: Any, actor: Any, study_uid: str, series_uid: str, staging: Path,
    subject: str, visit: str, *, route: str = "", keep_staging: bool = False,
    accept_burned_in: bool = False, progress: ProgressFn = no_progress,
) -> tuple[RetrieveResult, str | None]:
    """Retrieve one series (resumable) and, once complete, import it; (result, case code or None
    while the series is incomplete)."""
    result = retrieve_series(client, study_uid, series_uid, staging, route=route, progress=progress)
    if not result.complete:
        return result, None
    progress(1.0, "importing into the study (de-identifying) ...")
    return result, import_series(result, service, actor, subject, visit, keep_staging=keep_staging,
                                 accept_burned_in=accept_burned_in)


@dataclass(frozen=True)
class SentCase:
    code: str
    node: str
    result: SendResult
    files: list[Path]
    series_uid: str


def final_reads_to_send(service: Any, actor: Any, code: str, read_id: int | None = None) -> tuple[Any, list[ReadToSend]]:
    """(the case's original, its final reads to send: all, or the one ``read_id``)."""
    orig = service.case_original(actor, code, need_final=True)
    if not (orig.original_study_uid and orig.original_series_uid):
        raise PacsError(f"case {code} has no original study/series UID recorded at import: "
                        "it did not come from a PACS and cannot be sent back")
    finals = list(orig.final_reads)
    if read_id is not None:
        finals = [r for r in finals if r.read_id == read_id]
        if not finals:
            ids = ", ".join(str(r.read_id) for r in orig.final_reads)
            raise PacsError(f"read {read_id} is not a final read of case {code} (final: {ids})")
    return orig, [ReadToSend(f"read{r.read_id}", r.labels_path, r.endpoints, r.read_id) for r in finals]


def send_final_reads(
    client: PacsClient, service: Any, actor: Any, code: str, staging: Path, out_dir: Path, *,
    prepared: tuple[Any, list[ReadToSend]] | None = None, read_id: int | None = None, route: str = "",
    progress: ProgressFn = no_progress,
) -> SentCase:
    """Send a case's final read(s) as SEG + SR referencing the original series, then audit the
    send (who, what, where, file hashes) as an export. ``prepared``: what
    :func:`final_reads_to_send` returned, when the caller checked it before starting."""
    orig, reads = prepared if prepared is not None else final_reads_to_send(service, actor, code, read_id)
    result, files = send_reads(client, reads, orig.original_study_uid, orig.original_series_uid, staging,
                               route=route, out_dir=out_dir, progress=progress)
    service.record_pacs_export(actor, code, client.name, [int(r.read_id or 0) for r in reads], files,
                               orig.original_series_uid)
    return SentCase(code, client.name, result, files, orig.original_series_uid)
