"""The study server's HTTP interface (FastAPI): every request authenticated, every rule checked here.

Each endpoint resolves the bearer token to the :class:`~readerapp.study.auth.Actor` the server made
at log-in (clients never make actors) and calls the :class:`StudyService`, which checks the role;
the service's errors become HTTP statuses (401 not logged in or expired, 403 not allowed, 409
state, 400 bad input) with the error's class name, so the client raises the same error and the
commands keep their messages and exit codes. Endpoints are plain functions (FastAPI runs them in
its thread pool); only the upload body is read asynchronously.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy import select

from ..endpoints import SegmentationSource
from ..errors import ReaderAppError
from ..fileio import sha256_file
from ..measurements import from_json_obj
from ..study import errors as study_errors
from ..study.auth import Actor, Role, require, utc_clock
from ..study.errors import StudyError, StudyPermissionError, StudyStateError
from ..study.importer import ImportEntry
from ..study.models import Case, Read
from ..study.reading import ReadInfo
from ..study.service import StudyService
from ..study.status import ReadKind
from .sessions import Sessions

log = logging.getLogger(__name__)

#: A token's absolute lifetime (the study's inactivity time ends it sooner when idle).
TOKEN_LIFETIME = dt.timedelta(hours=12)
#: Largest upload accepted (a scan tree for import, a label map).
MAX_UPLOAD_BYTES = 64 * 1024**3
#: Largest label map accepted (a 1024 x 1024 x 2000 uint8 volume, uncompressed).
MAX_LABELS_BYTES = 2 * 1024**3
API = "/api"


@dataclass
class _Upload:
    owner: int
    path: Path
    size: int
    sha256: str
    suffix: str


# --- request bodies --------------------------------------------------------------------------
class LoginBody(BaseModel):
    name: str
    password: str


class PasswordBody(BaseModel):
    password: str


class StudyBody(BaseModel):
    config_json: str


class UserBody(BaseModel):
    name: str
    role: str
    password: str


class ActiveBody(BaseModel):
    active: bool
    reason: str


class UploadBody(BaseModel):
    size: int
    sha256: str
    suffix: str = ""


class ReadBody(BaseModel):
    case: str
    upload: str | None = None
    form: Any = None
    source: SegmentationSource = SegmentationSource.CORRECTED
    reason: str | None = None
    #: The reader's rulers and ROIs as ``measurements.to_json_obj`` writes them (None: none).
    measurements: Any = None


class AdjudicateBody(BaseModel):
    password: str
    reason: str
    choose: int | None = None
    based_on: int | None = None
    upload: str | None = None
    form: Any = None


class ImportBody(BaseModel):
    upload: str
    kind: str  # "folder", "manifest" or "entries"
    accept_burned_in: bool = False


class PasswordChangeBody(BaseModel):
    password: str
    reason: str = ""


class RoleBody(BaseModel):
    role: str
    reason: str


class VerifyBody(BaseModel):
    anchors: list[str] = []


class PacsExportBody(BaseModel):
    code: str
    node: str
    read_ids: list[int]
    upload: str
    referenced_series_uid: str


class ExportBody(BaseModel):
    randomization_csv: str | None = None
    dicom: bool = True
    dicom_cases: list[str] | None = None


_STATUS = (
    (study_errors.AuthenticationError, 401),
    (study_errors.StudyPermissionError, 403),
    (study_errors.StudyStateError, 409),
)


def read_json(info: ReadInfo) -> dict[str, Any]:
    """A read as the client receives it (no server paths)."""
    d = asdict(info)
    for k in ("folder", "labels_path"):
        d.pop(k)
    return d


def create_app(service: StudyService, *, clock: Callable[[], dt.datetime] = utc_clock,
               token_lifetime: dt.timedelta = TOKEN_LIFETIME) -> FastAPI:
    """The study server's application for one open study."""
    app = FastAPI(title="ReaderApp study server", docs_url=None, redoc_url=None, openapi_url=None)
    sessions = Sessions(clock, token_lifetime)
    work = service.storage / ".server"
    # uploads and exports are known to this process only: a restart starts them afresh
    for leftover in ("uploads", "exports"):
        shutil.rmtree(work / leftover, ignore_errors=True)
    uploads: dict[str, _Upload] = {}
    exports: dict[str, tuple[int, Path]] = {}
    lock = threading.Lock()

    @app.exception_handler(ReaderAppError)
    def _error(_request: Request, exc: ReaderAppError) -> JSONResponse:
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status)

    def actor(authorization: str | None = Header(default=None)) -> Actor:
        return sessions.actor(authorization)

    def maybe_actor(authorization: str | None = Header(default=None)) -> Actor | None:
        return None if authorization is None else sessions.actor(authorization)

    # --- log-in ------------------------------------------------------------------------------
    @app.post(f"{API}/login")
    def login(body: LoginBody) -> dict[str, Any]:
        a = service.login(body.name, body.password)
        token, expires = sessions.add(a)
        return {"token": token, "expires": expires.isoformat(), "user_id": a.user_id, "name": a.name,
                "role": a.role.value, "timeout_s": a.timeout.total_seconds()}

    @app.post(f"{API}/logout")
    def logout(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        sessions.drop(authorization)
        return {}

    @app.post(f"{API}/reauth")
    def reauth(body: PasswordBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        service.reauthenticate(a, body.password)
        return {}

    # --- the study and users -------------------------------------------------------------------
    @app.get(f"{API}/study")
    def study() -> dict[str, Any]:  # the rules of the study: nothing identifying
        return {"config_json": service.config.to_json()}

    @app.get(f"{API}/status")
    def status() -> dict[str, Any]:
        return {"has_users": service.has_users()}

    @app.post(f"{API}/study")
    def create_study(body: StudyBody, a: Actor | None = Depends(maybe_actor)) -> dict[str, Any]:
        from ..study.config import StudyConfig

        service.create_study(StudyConfig.from_json(body.config_json), a)
        return {}

    @app.post(f"{API}/users")
    def add_user(body: UserBody, a: Actor | None = Depends(maybe_actor)) -> dict[str, Any]:
        return {"id": service.add_user(a, body.name, body.role, body.password)}

    @app.get(f"{API}/users")
    def users(a: Actor = Depends(actor)) -> list[Any]:
        return [list(u) for u in service.users(a)]

    @app.post(f"{API}/users/{{name}}/active")
    def set_active(name: str, body: ActiveBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        service.set_user_active(a, name, body.active, body.reason)
        if not body.active:
            sessions.drop_user(name)
        return {}

    # --- worklists and cases ---------------------------------------------------------------
    def readable(a: Actor) -> set[str]:
        """Codes a reader may open: his worklist less the cases two other readers already hold."""
        with service.db.transaction() as s:
            taken: dict[int, set[int]] = {}
            for r in s.scalars(select(Read).where(Read.kind == ReadKind.READ)):
                taken.setdefault(r.case_id, set()).add(r.reader_id)
            return {c.code for c in s.scalars(select(Case))
                    if a.user_id in taken.get(c.id, set()) or len(taken.get(c.id, set())) < 2}

    @app.get(f"{API}/worklist")
    def worklist(a: Actor = Depends(actor)) -> list[dict[str, Any]]:
        entries = service.worklist(a)
        ok = readable(a)
        return [asdict(e) for e in entries if e.code in ok]

    def case_files(a: Actor, code: str) -> tuple[Path, list[list[str]]]:
        folder = service.case_folder(a, code)  # checks the role (and an adjudicator's cases)
        with service.db.transaction() as s:
            case = s.scalar(select(Case).where(Case.code == code))
            assert case is not None
            if a.role is Role.READER:
                holders = set(s.scalars(select(Read.reader_id).where(Read.case_id == case.id, Read.kind == ReadKind.READ)))
                if a.user_id not in holders and len(holders) >= 2:
                    raise StudyPermissionError(f"case {code} is not on your worklist")
            return folder, json.loads(case.files_json)

    @app.get(f"{API}/cases/{{code}}/files")
    def case_file_list(code: str, a: Actor = Depends(actor)) -> list[dict[str, Any]]:
        folder, files = case_files(a, code)
        return [{"name": n, "sha256": h, "size": (folder / n).stat().st_size} for n, h in files]

    @app.get(f"{API}/cases/{{code}}/files/{{name}}")
    def case_file(code: str, name: str, a: Actor = Depends(actor)) -> FileResponse:
        folder, files = case_files(a, code)
        digest = dict((n, h) for n, h in files).get(name)
        if digest is None:
            raise StudyPermissionError(f"case {code} has no file {name!r}")
        return FileResponse(folder / name, headers={"X-SHA256": digest}, media_type="application/dicom")

    archive_lock = threading.Lock()

    @app.get(f"{API}/cases/{{code}}/archive")
    def case_archive(code: str, a: Actor = Depends(actor)) -> FileResponse:
        """Every file of a case in one tar (built once, then served with Range for resuming)."""
        folder, files = case_files(a, code)
        tar = work / "case-archives" / f"{code}.tar"
        sha_file = tar.with_suffix(".sha256")
        with archive_lock:
            if not sha_file.is_file():
                tar.parent.mkdir(parents=True, exist_ok=True)
                tmp = tar.with_suffix(".tmp")
                with tarfile.open(tmp, "w") as tf:
                    for name, _digest in files:
                        tf.add(folder / name, arcname=name)
                tmp.replace(tar)
                sha_file.write_text(sha256_file(tar), encoding="ascii")
        return FileResponse(tar, headers={"X-SHA256": sha_file.read_text(encoding="ascii").strip()},
                            media_type="application/x-tar")

    # --- uploads (resumable: POST, then PUT chunks at offsets; GET tells the offset) ---------
    def upload_of(a: Actor, uid: str) -> _Upload:
        up = uploads.get(uid)
        if up is None or up.owner != a.user_id:
            raise StudyPermissionError("no such upload of yours")
        return up

    def finished(a: Actor, uid: str) -> Path:
        up = upload_of(a, uid)
        if not up.path.is_file() or up.path.stat().st_size != up.size:
            raise StudyStateError("the upload is incomplete; resume it")
        if sha256_file(up.path) != up.sha256:
            raise StudyError("the upload does not match its SHA-256; send it again")
        return up.path

    def discard(uid: str | None) -> None:
        up = uploads.pop(uid, None) if uid else None
        if up is not None:
            shutil.rmtree(up.path.parent, ignore_errors=True)

    @app.post(f"{API}/uploads")
    def new_upload(body: UploadBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        a.touch()
        if not 0 <= body.size <= MAX_UPLOAD_BYTES or len(body.sha256) != 64:
            raise StudyError("an upload needs its size and SHA-256")
        suffix = body.suffix if body.suffix in ("", ".nii", ".nii.gz", ".nrrd", ".npy", ".tar") else ""
        if suffix == ".tar":  # scans to import, objects sent to a PACS: not a reader's business
            require(a, Role.ADMIN, Role.STATISTICIAN, action="uploading scans or result objects")
        elif body.size > MAX_LABELS_BYTES:
            raise StudyError(f"a label map of {body.size} bytes is larger than any chest CT's")
        uid = secrets.token_urlsafe(16)
        folder = work / "uploads" / uid
        folder.mkdir(parents=True)
        path = folder / ("data" + suffix)
        path.touch()
        with lock:
            uploads[uid] = _Upload(a.user_id, path, body.size, body.sha256.lower(), suffix)
        return {"id": uid, "offset": 0}

    @app.get(f"{API}/uploads/{{uid}}")
    def upload_state(uid: str, a: Actor = Depends(actor)) -> dict[str, Any]:
        up = upload_of(a, uid)
        return {"id": uid, "offset": up.path.stat().st_size, "size": up.size}

    @app.put(f"{API}/uploads/{{uid}}")
    async def upload_chunk(uid: str, request: Request, offset: int,
                           authorization: str | None = Header(default=None)) -> JSONResponse:
        from starlette.concurrency import run_in_threadpool

        try:
            a = await run_in_threadpool(sessions.actor, authorization)
            up = upload_of(a, uid)
        except ReaderAppError as exc:
            return _error(request, exc)
        have = up.path.stat().st_size
        if offset != have:
            return JSONResponse({"error": "StudyStateError", "detail": f"upload is at offset {have}",
                                 "offset": have}, status_code=409)
        with up.path.open("ab") as f:
            async for chunk in request.stream():
                if have + len(chunk) > up.size:
                    f.truncate(have)
                    return JSONResponse({"error": "StudyError", "detail": "more data than announced"},
                                        status_code=400)
                f.write(chunk)
                have += len(chunk)
        return JSONResponse({"id": uid, "offset": have})

    def labels_arg(a: Actor, uid: str | None) -> Any:
        if uid is None:
            return None
        path = finished(a, uid)
        if path.suffix == ".npy":
            import numpy as np

            return np.load(path, allow_pickle=False)
        return path

    # --- reads ---------------------------------------------------------------------------------
    @app.post(f"{API}/reads")
    def save_read(body: ReadBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        if body.upload is None:
            raise StudyError("a read needs its label map")
        try:
            measurements = None if body.measurements is None else from_json_obj(body.measurements)
            info = service.save_read(a, body.case, labels_arg(a, body.upload), body.form,
                                     source=body.source, reason=body.reason,
                                     measurements=measurements)
        finally:
            discard(body.upload)
        return read_json(info)

    @app.post(f"{API}/reads/{{read_id}}/sign")
    def sign_read(read_id: int, body: PasswordBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        return read_json(service.sign_read(a, read_id, body.password))

    @app.get(f"{API}/reads/{{read_id}}")
    def get_read(read_id: int, a: Actor = Depends(actor)) -> dict[str, Any]:
        return read_json(service.get_read(a, read_id))

    @app.get(f"{API}/reads/{{read_id}}/labels")
    def read_labels(read_id: int, a: Actor = Depends(actor)) -> FileResponse:
        info = service.get_read(a, read_id)
        return FileResponse(info.labels_path, headers={"X-SHA256": info.labels_sha256},
                            media_type="application/gzip")

    @app.get(f"{API}/reads/{{read_id}}/archive")
    def read_archive(read_id: int, a: Actor = Depends(actor)) -> FileResponse:
        """The whole read folder (label map, form, endpoints, provenance) as one tar."""
        info = service.get_read(a, read_id)
        return _folder_archive(info.folder, work / "read-archives" / f"{read_id}-{info.folder.name}.tar")

    @app.get(f"{API}/cases/{{code}}/my-reads")
    def my_reads(code: str, a: Actor = Depends(actor)) -> list[dict[str, Any]]:
        return [read_json(i) for i in service.my_reads(a, code)]

    # --- adjudication -----------------------------------------------------------------------
    @app.get(f"{API}/adjudication")
    def adjudication_worklist(a: Actor = Depends(actor)) -> list[dict[str, Any]]:
        return [asdict(e) for e in service.adjudication_worklist(a)]

    @app.get(f"{API}/adjudication/{{code}}")
    def adjudication_view(code: str, a: Actor = Depends(actor)) -> dict[str, Any]:
        v = service.adjudication_view(a, code)
        return {"code": v.code, "needs_fibrosis": v.needs_fibrosis, "reasons": list(v.reasons),
                "read_a": read_json(v.read_a), "read_b": read_json(v.read_b),
                "differences": {k: list(p) for k, p in v.differences.items()}}

    @app.post(f"{API}/adjudication/{{code}}")
    def adjudicate(code: str, body: AdjudicateBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        try:
            info = service.adjudicate(a, code, body.password, body.reason, choose=body.choose,
                                      based_on=body.based_on, labels=labels_arg(a, body.upload),
                                      form=body.form)
        finally:
            discard(body.upload)
        return read_json(info)

    # --- administrator and statistician ----------------------------------------------------
    @app.post(f"{API}/import")
    def import_scans(body: ImportBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        require(a, Role.ADMIN, action="importing scans")
        tar = finished(a, body.upload)
        dest = tar.parent / "tree"
        try:
            with tarfile.open(tar) as tf:
                tf.extractall(dest, filter="data")
            if body.kind == "entries":
                rows = json.loads((dest / "entries.json").read_text(encoding="utf-8"))
                codes = service.import_entries(a, [
                    ImportEntry(r["subject"], r["visit"], dest / r["folder"], r.get("acquisition_date"))
                    for r in rows], accept_burned_in=body.accept_burned_in)
            elif body.kind == "manifest":
                codes = service.import_manifest(a, dest / "manifest.csv", accept_burned_in=body.accept_burned_in)
            else:
                codes = service.import_folder(a, dest / "root", accept_burned_in=body.accept_burned_in)
        finally:
            discard(body.upload)
        return {"codes": codes}

    @app.get(f"{API}/originals")
    def originals(codes: str | None = None, a: Actor = Depends(actor)) -> list[dict[str, Any]]:
        """Original UIDs and final reads (administrator, statistician): for the PACS send-back."""
        wanted = None if codes is None else [c for c in codes.split(",") if c]
        out = []
        for o in service.case_originals(a, wanted):
            d = asdict(o)
            d["final_reads"] = [{k: v for k, v in asdict(r).items() if k not in ("folder", "labels_path")}
                                for r in o.final_reads]
            out.append(d)
        return out

    @app.get(f"{API}/originals/{{code}}/reads/{{read_id}}/labels")
    def final_labels(code: str, read_id: int, a: Actor = Depends(actor)) -> FileResponse:
        [orig] = service.case_originals(a, [code])
        for r in orig.final_reads:
            if r.read_id == read_id:
                return FileResponse(r.labels_path, headers={"X-SHA256": sha256_file(r.labels_path)},
                                    media_type="application/gzip")
        raise StudyPermissionError(f"read {read_id} is not a final read of case {code}")

    @app.post(f"{API}/pacs-exports")
    def pacs_export(body: PacsExportBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        require(a, Role.ADMIN, Role.STATISTICIAN, action="sending reads to a PACS")
        tar = finished(a, body.upload)
        dest = tar.parent / "sent"
        try:
            with tarfile.open(tar) as tf:
                tf.extractall(dest, filter="data")
            files = sorted(p for p in dest.rglob("*") if p.is_file())
            service.record_pacs_export(a, body.code, body.node, body.read_ids, files, body.referenced_series_uid)
        finally:
            discard(body.upload)
        return {"files": len(files)}

    @app.get(f"{API}/links")
    def links(a: Actor = Depends(actor)) -> list[dict[str, str]]:
        return service.case_links(a)

    @app.post(f"{API}/export")
    def export(body: ExportBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        require(a, Role.STATISTICIAN, action="exporting")
        eid = secrets.token_urlsafe(16)
        folder = work / "exports" / eid
        folder.mkdir(parents=True)
        rand = None
        if body.randomization_csv is not None:
            rand = folder / "randomization.csv"
            rand.write_text(body.randomization_csv, encoding="utf-8")
        out = folder / "out"
        res = service.export(a, out, rand, dicom=body.dicom, dicom_cases=body.dicom_cases)
        tar = folder / "export.tar"
        with tarfile.open(tar, "w") as tf:
            tf.add(out, arcname=".")
        with lock:
            exports[eid] = (a.user_id, tar)
        shutil.rmtree(out, ignore_errors=True)
        return {"id": eid, "size": tar.stat().st_size, "sha256": sha256_file(tar), "rows": res.rows,
                "csv": res.csv_path.relative_to(out).as_posix(),
                "dicom_files": [p.relative_to(out).as_posix() for p in res.dicom_files],
                "problems": list(res.problems)}

    @app.get(f"{API}/exports/{{eid}}")
    def export_file(eid: str, a: Actor = Depends(actor)) -> FileResponse:
        owner, tar = exports.get(eid, (-1, Path()))
        if owner != a.user_id:
            raise StudyPermissionError("no such export of yours")
        return FileResponse(tar, media_type="application/x-tar")

    @app.delete(f"{API}/exports/{{eid}}")
    def export_done(eid: str, a: Actor = Depends(actor)) -> dict[str, Any]:
        owner, tar = exports.get(eid, (-1, Path()))
        if owner != a.user_id:
            raise StudyPermissionError("no such export of yours")
        with lock:
            exports.pop(eid, None)
        shutil.rmtree(tar.parent, ignore_errors=True)
        return {}

    # --- audit ---------------------------------------------------------------------------------
    @app.post(f"{API}/audit/verify")
    def audit_verify(body: VerifyBody) -> dict[str, Any]:
        rep = service.audit_verify(body.anchors)
        return {"records": rep.records, "problems": list(rep.problems), "notes": list(rep.notes),
                "authenticated": rep.authenticated, "legacy": rep.legacy}

    @app.get(f"{API}/audit/key")
    def audit_key_state() -> dict[str, Any]:
        return {"has_key": service.has_audit_key()}

    @app.post(f"{API}/audit/key")
    def audit_key_create(a: Actor = Depends(actor)) -> dict[str, Any]:
        return {"anchor": service.audit_key_create(a)}

    @app.post(f"{API}/audit/anchor")
    def audit_anchor(a: Actor = Depends(actor)) -> dict[str, Any]:
        return {"anchor": service.audit_anchor(a)}

    @app.post(f"{API}/users/{{name}}/password")
    def set_password(name: str, body: PasswordChangeBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        service.set_password(a, name, body.password, body.reason)
        if name != a.name:
            sessions.drop_user(name)
        return {}

    @app.post(f"{API}/users/{{name}}/role")
    def set_role(name: str, body: RoleBody, a: Actor = Depends(actor)) -> dict[str, Any]:
        service.set_user_role(a, name, body.role, body.reason)
        sessions.drop_user(name)  # the next log-in carries the new role
        return {}

    @app.post(f"{API}/audit/export")
    def audit_export(a: Actor = Depends(actor)) -> dict[str, Any]:
        require(a, Role.ADMIN, action="exporting the audit trail")
        with tempfile.TemporaryDirectory(dir=_mkdir(work)) as tmp:
            path = Path(tmp) / "audit.csv"
            n = service.audit_export(a, path)
            return {"records": n, "csv": path.read_bytes().decode("utf-8")}  # line ends as written

    return app


_ARCHIVE_LOCK = threading.Lock()


def _folder_archive(folder: Path, tar: Path) -> FileResponse:
    """A folder's files as a tar (made once; a read folder never changes), served with Range."""
    with _ARCHIVE_LOCK:
        if not tar.is_file():
            tar.parent.mkdir(parents=True, exist_ok=True)
            tmp = tar.with_suffix(".tmp")
            with tarfile.open(tmp, "w") as tf:
                for p in sorted(folder.iterdir()):
                    if p.is_file():
                        tf.add(p, arcname=p.name)
            tmp.replace(tar)
    return FileResponse(tar, headers={"X-SHA256": sha256_file(tar)}, media_type="application/x-tar")


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p
