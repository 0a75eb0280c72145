"""From a PACS into the blinded study, and the final read back to the PACS.

``retrieve_study`` brings a study's CT series into the staging folder (resumable);
``import_series`` hands a staged series to the study workflow, which de-identifies it on arrival
under a random case code; ``send_reads`` writes final reads as SEG and SR objects against the
original series and sends them back. The staged copy still
carries the patient's identity, so it is removed after a successful import unless asked to keep it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PacsError
from ..progress import ProgressFn, no_progress, scaled
from .models import PacsClient, RetrieveResult, SendResult, SeriesHit

ROUTES = ("wado", "get", "move")


def check_route(client: PacsClient, route: str) -> None:
    """Refuse a route the node cannot take, before anything is queried."""
    from .dicomweb import DicomWebNode
    from .dimse import DimseNode

    if route not in ("", *ROUTES):
        raise PacsError(f"unknown route {route!r}: choose one of {', '.join(ROUTES)}")
    if isinstance(client, DicomWebNode) and route not in ("", "wado"):
        raise PacsError(f"PACS {client.name!r} is a DICOMweb node: route {route!r} needs a DIMSE node")
    if isinstance(client, DimseNode) and route == "wado":
        raise PacsError(f"PACS {client.name!r} is a DIMSE node: choose route get or move, not {route!r}")


def retrieve_series(
    client: PacsClient, study_uid: str, series_uid: str, dest: Path, *, route: str = "",
    progress: ProgressFn = no_progress,
) -> RetrieveResult:
    """One series by the client's route (DICOMweb: WADO-RS; DIMSE: C-GET, or C-MOVE)."""
    from .dicomweb import DicomWebNode
    from .dimse import DimseNode

    check_route(client, route)
    if isinstance(client, DicomWebNode):
        return client.retrieve_series(study_uid, series_uid, dest, progress)
    if isinstance(client, DimseNode):
        return client.retrieve_series(study_uid, series_uid, dest, progress, route=route or "get")
    return client.retrieve_series(study_uid, series_uid, dest, progress)


def pick_series(client: PacsClient, study_uid: str, series_uid: str = "") -> list[SeriesHit]:
    """The CT series of a study to retrieve: the one named, or all of them."""
    hits = client.find_series(study_uid, modality="CT")
    if not hits:
        raise PacsError(f"PACS {client.name!r} has no CT series in study {study_uid} (unknown study?)")
    if series_uid:
        hits = [h for h in hits if h.series_uid == series_uid]
        if not hits:
            raise PacsError(f"PACS {client.name!r}: study {study_uid} has no CT series {series_uid}")
    return hits


def retrieve_study(
    client: PacsClient, study_uid: str, dest: Path, *, series_uid: str = "", route: str = "",
    progress: ProgressFn = no_progress,
) -> list[RetrieveResult]:
    """Every CT series of a study (or the one named) into ``dest``."""
    check_route(client, route)
    hits = pick_series(client, study_uid, series_uid)
    out = []
    for i, h in enumerate(hits):
        sub = scaled(progress, i / len(hits), (i + 1) / len(hits))
        out.append(retrieve_series(client, study_uid, h.series_uid, dest, route=route, progress=sub))
    return out


def import_series(
    result: RetrieveResult, service: Any, actor: Any, subject: str, visit: str, *,
    acquisition_date: str | None = None, keep_staging: bool = False, accept_burned_in: bool = False,
) -> str:
    """Import a complete staged series into the study (de-identified there); the new case code.

    ``accept_burned_in``: the administrator checked images flagged as possibly showing identity
    in their pixels (see :func:`readerapp.study.deid.burned_in_reason`)."""
    if not result.complete:
        raise PacsError(
            f"series {result.series_uid} is incomplete ({result.skipped + result.received} of "
            f"{result.expected} instances, {len(result.failed)} failed): retrieve it again to resume"
        )
    from ..study.importer import ImportEntry

    codes = service.import_entries(actor, [ImportEntry(subject, visit, result.folder, acquisition_date)],
                                   accept_burned_in=accept_burned_in)
    if not keep_staging:
        shutil.rmtree(result.folder, ignore_errors=True)
    return str(codes[0])


def send_files(client: PacsClient, paths: list[Path], progress: ProgressFn = no_progress) -> SendResult:
    """Send DICOM files (a SEG, an SR, or folders of them) by the client's route."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*.dcm") if f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise PacsError(f"{p}: no such file or folder")
    if not files:
        raise PacsError(f"nothing to send: no .dcm files in {', '.join(map(str, paths))}")
    result = client.send(files, progress)
    if result.failed:
        raise PacsError(
            f"PACS {client.name!r} refused {len(result.failed)} of {len(files)} objects: "
            + "; ".join(result.failed[:3])
        )
    return result


@dataclass(frozen=True)
class ReadToSend:
    """A read's label map (on the grid of the series it was read on) and its endpoints."""

    name: str  # names the output subfolder, e.g. "read12"
    labels_path: Path
    endpoints: dict[str, Any]
    #: The study's read id, when the read comes from a study.
    read_id: int | None = None


def send_reads(
    client: PacsClient, reads: list[ReadToSend], study_uid: str, series_uid: str, staging_root: Path, *,
    route: str = "", out_dir: Path | None = None, keep_staging: bool = False,
    progress: ProgressFn = no_progress,
) -> tuple[SendResult, list[Path]]:
    """Send reads back as SEG + SR objects that reference the PACS's own (original) series.

    The reads were made on the de-identified copy, which keeps the original grid; the original
    series is retrieved again (resumably) so the objects point at the instances the PACS holds.
    The identifiable staged copy is removed afterwards unless ``keep_staging``.
    """
    from ..io.dicom import load_series
    from ..io.labelmap import read_labelmap
    from .results import write_results

    if not reads:
        raise PacsError("nothing to send: no reads given")
    res = retrieve_series(client, study_uid, series_uid, staging_root, route=route,
                          progress=scaled(progress, 0.0, 0.6))
    if not res.complete:
        raise PacsError(f"series {series_uid} arrived incomplete: send again to resume the retrieve")
    try:
        volume = load_series([res.folder])[0]
        out = Path(out_dir) if out_dir else res.folder.parent / f"{series_uid}-results"
        files: list[Path] = []
        for read in reads:
            labels = read_labelmap(read.labels_path, volume)
            dest = out if len(reads) == 1 else out / read.name
            files += write_results(res.folder, labels, read.endpoints, dest, volume=volume)
        progress(0.7, "sending SEG and SR")
        sent = send_files(client, files, scaled(progress, 0.7, 1.0))
    finally:
        if not keep_staging:
            shutil.rmtree(res.folder, ignore_errors=True)
    return sent, files


def send_read(
    client: PacsClient, read_folder: Path, study_uid: str, series_uid: str, staging_root: Path, *,
    route: str = "", out_dir: Path | None = None, keep_staging: bool = False,
    progress: ProgressFn = no_progress,
) -> tuple[SendResult, list[Path]]:
    """Send a saved read folder (``labels.nii.gz`` + ``endpoints.json``, as the workstation and
    the study save them) back as SEG + SR referencing the original series (see :func:`send_reads`)."""
    from ..readfile import LABELS_NAME, load_read

    read = load_read(Path(read_folder))
    item = ReadToSend("read", Path(read_folder) / read.meta.get("labels_file", LABELS_NAME), read.endpoints)
    return send_reads(client, [item], study_uid, series_uid, staging_root, route=route, out_dir=out_dir,
                      keep_staging=keep_staging, progress=progress)
