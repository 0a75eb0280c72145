"""A study on a study server, behind the methods of :class:`~readerapp.study.service.StudyService`.

The commands and the study window call the same methods (``login``, ``worklist``, ``case_folder``,
``save_read``, ``sign_read``, ...) on either backend. Here each becomes an HTTPS request with the
user's bearer token; the server checks every rule. Case files and reads are downloaded into a local
cache with resumable ranged requests and checked against their SHA-256; label maps and scan trees
are uploaded in chunks at offsets that resume after a dropped connection. Errors come back as the
same :mod:`readerapp.study.errors` classes the local service raises.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from .. import errors as core_errors
from ..endpoints import SegmentationSource
from ..fileio import sha256_file
from ..study import errors as study_errors
from ..study.audit import VerifyReport
from ..study.auth import Actor, Role
from ..study.config import StudyConfig
from ..study.errors import SessionExpiredError, StudyError
from ..study.export import ExportResult
from ..study.originals import CaseOriginal, FinalRead
from ..study.private import open_private
from ..study.reading import AdjudicationEntry, AdjudicationView, ReadInfo
from ..study.service import WorklistEntry
from ..study.status import AdjudicationState, ReadKind, ReadStatus, WorklistStatus

CHUNK = 8 * 1024 * 1024
RETRIES = 5
#: Progress callback: (bytes done, bytes in all).
Progress = Callable[[int, int], None]


@dataclass
class RemoteActor(Actor):
    """A user logged in to a study server: the server's token and the server's view of the role
    (the server checks it on every request; the client keeps it only to choose what to show)."""

    token: str = field(default="", repr=False)


class StudyClient:
    """One study server (``https://host:port``; ``http://`` only for a loopback address)."""

    def __init__(self, url: str, *, cafile: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 timeout: float = 600.0, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        verify: Any = True
        if cafile:
            import ssl

            try:
                verify = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:
                raise StudyError(f"{cafile}: cannot read the study server's CA certificate ({exc})") from exc
        self.http = httpx.Client(base_url=self.url, verify=verify, timeout=timeout, transport=transport)
        if cache_dir is None:
            from ..settings import data_dir

            key = hashlib.sha256(self.url.encode()).hexdigest()[:12]
            cache_dir = data_dir() / "server-cache" / key
        self.cache = Path(cache_dir)
        self._config: StudyConfig | None = None
        #: Called with (bytes done, bytes in all) during every transfer without its own callback
        #: (the commands show it at a terminal).
        self.progress: Progress | None = None

    def describe(self) -> str:
        return f"the study server {self.url}"

    def close(self) -> None:
        self.http.close()

    # --- plumbing -----------------------------------------------------------------------------
    def _headers(self, actor: Actor | None) -> dict[str, str]:
        if actor is None:
            return {}
        if not isinstance(actor, RemoteActor) or not actor.token:
            raise SessionExpiredError("not logged in to the study server")
        return {"Authorization": f"Bearer {actor.token}"}

    def _request(self, method: str, path: str, actor: Actor | None = None, **kw: Any) -> httpx.Response:
        headers = {**self._headers(actor), **kw.pop("headers", {})}
        try:
            r = self.http.request(method, "/api" + path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise StudyError(f"cannot reach the study server {self.url}: {exc}") from exc
        if r.status_code >= 400:
            raise _error(r)
        return r

    def _json(self, method: str, path: str, actor: Actor | None = None, **kw: Any) -> Any:
        return self._request(method, path, actor, **kw).json()

    def _download(self, actor: Actor, path: str, dest: Path, sha256: str | None = None,
                  progress: Progress | None = None) -> Path:
        """GET into ``dest``, resuming a partial ``.part`` file with a Range request; checked by SHA-256."""
        progress = progress or self.progress
        if dest.is_file() and sha256 is not None and sha256_file(dest) == sha256:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        for attempt in range(RETRIES):
            have = part.stat().st_size if part.exists() else 0
            headers = {**self._headers(actor), **({"Range": f"bytes={have}-"} if have else {})}
            try:
                with self.http.stream("GET", "/api" + path, headers=headers) as r:
                    if r.status_code == 416:
                        pass  # the part file is already complete
                    elif r.status_code in (200, 206):
                        if r.status_code == 200:
                            have = 0
                        sha256 = sha256 or r.headers.get("X-SHA256")
                        total = have + int(r.headers.get("Content-Length", 0))
                        with part.open("ab" if have else "wb") as f:
                            for chunk in r.iter_bytes(CHUNK):
                                f.write(chunk)
                                have += len(chunk)
                                if progress:
                                    progress(have, total)
                    else:
                        r.read()
                        raise _error(r)
                break
            except httpx.TransportError as exc:
                if attempt == RETRIES - 1:
                    raise StudyError(f"cannot download from the study server {self.url}: {exc}") from exc
        if sha256 is not None and sha256_file(part) != sha256:
            part.unlink()
            raise StudyError(f"{dest.name}: the download does not match its SHA-256; try again")
        part.replace(dest)
        return dest

    def _upload(self, actor: Actor, path: Path, suffix: str, progress: Progress | None = None) -> str:
        """Send a file in chunks; after a dropped connection ask the server's offset and go on."""
        progress = progress or self.progress
        size, sha = path.stat().st_size, sha256_file(path)
        uid = self._json("POST", "/uploads", actor, json={"size": size, "sha256": sha, "suffix": suffix})["id"]
        offset, failures = 0, 0
        with path.open("rb") as f:
            while offset < size:
                f.seek(offset)
                chunk = f.read(CHUNK)
                try:
                    r = self.http.put(f"/api/uploads/{uid}", params={"offset": offset}, content=chunk,
                                      headers=self._headers(actor))
                except httpx.TransportError as exc:
                    failures += 1
                    if failures >= RETRIES:
                        raise StudyError(f"cannot upload to the study server {self.url}: {exc}") from exc
                    offset = self._json("GET", f"/uploads/{uid}", actor)["offset"]
                    continue
                if r.status_code == 409 and "offset" in r.json():
                    offset = int(r.json()["offset"])
                    continue
                if r.status_code >= 400:
                    raise _error(r)
                offset = int(r.json()["offset"])
                if progress:
                    progress(offset, size)
        return uid

    def _labels_upload(self, actor: Actor, labels: Any) -> str:
        if isinstance(labels, np.ndarray):
            with tempfile.TemporaryDirectory() as tmp:
                p = Path(tmp) / "labels.npy"
                np.save(p, labels, allow_pickle=False)
                return self._upload(actor, p, ".npy")
        p = Path(labels)
        if not p.is_file():
            raise study_errors.ImportDataError(f"{p}: no such label map")
        name = p.name.lower()
        suffix = next((s for s in (".nii.gz", ".nii", ".nrrd") if name.endswith(s)), "")
        return self._upload(actor, p, suffix)

    def _read_info(self, d: dict[str, Any]) -> ReadInfo:
        folder = self.cache / "reads" / str(d["id"])
        d = {**d, "kind": ReadKind(d["kind"]), "status": ReadStatus(d["status"])}
        return ReadInfo(folder=folder, labels_path=folder / "labels.nii.gz", **d)

    def _fetched(self, actor: Actor, info: ReadInfo) -> ReadInfo:
        """Download the read's folder (label map, form, endpoints, provenance) into the cache
        (always afresh: a draft's form can change while its label map stays the same)."""
        archive = info.folder.with_name(f"{info.id}.tar")
        self._download(actor, f"/reads/{info.id}/archive", archive)
        if info.folder.exists():
            import shutil

            shutil.rmtree(info.folder)
        with tarfile.open(archive) as tf:
            tf.extractall(info.folder, filter="data")
        archive.unlink()
        if sha256_file(info.labels_path) != info.labels_sha256:
            raise StudyError(f"read {info.id}: the downloaded label map does not match its SHA-256; try again")
        return info

    # --- the study and users -----------------------------------------------------------------
    @property
    def config(self) -> StudyConfig:
        if self._config is None:
            self._config = StudyConfig.from_json(self._json("GET", "/study")["config_json"])
        return self._config

    def create_study(self, config: StudyConfig, actor: Actor | None = None) -> None:
        self._json("POST", "/study", actor, json={"config_json": config.to_json()})
        self._config = config

    def has_users(self) -> bool:
        return bool(self._json("GET", "/status")["has_users"])

    def add_user(self, actor: Actor | None, name: str, role: str | Role, password: str) -> int:
        return int(self._json("POST", "/users", actor, json={"name": name, "role": str(role), "password": password})["id"])

    def set_user_active(self, actor: Actor, name: str, active: bool, reason: str) -> None:
        self._json("POST", f"/users/{name}/active", actor, json={"active": active, "reason": reason})

    def users(self, actor: Actor) -> list[tuple[str, str, bool]]:
        return [tuple(u) for u in self._json("GET", "/users", actor)]  # type: ignore[misc]

    def login(self, name: str, password: str) -> RemoteActor:
        d = self._json("POST", "/login", json={"name": name, "password": password})
        return RemoteActor(user_id=d["user_id"], name=d["name"], role=Role(d["role"]),
                           timeout=dt.timedelta(seconds=d["timeout_s"]), token=d["token"])

    def reauthenticate(self, actor: Actor, password: str) -> None:
        self._json("POST", "/reauth", actor, json={"password": password})

    def logout(self, actor: Actor) -> None:
        if isinstance(actor, RemoteActor) and actor.token:
            self._json("POST", "/logout", actor)
        actor.logout()

    # --- worklists, cases, reads ----------------------------------------------------------------
    def worklist(self, actor: Actor) -> list[WorklistEntry]:
        return [WorklistEntry(**{**e, "status": WorklistStatus(e["status"])})
                for e in self._json("GET", "/worklist", actor)]

    def case_folder(self, actor: Actor, code: str, progress: Progress | None = None) -> Path:
        """Download the case's de-identified files (one archive, resuming, checked by SHA-256,
        then each file checked against the study's own hash) into the local cache."""
        files = self._json("GET", f"/cases/{code}/files", actor)
        folder = self.cache / "cases" / code

        def complete() -> bool:
            return all((folder / f["name"]).is_file() and sha256_file(folder / f["name"]) == f["sha256"]
                       for f in files)

        if folder.is_dir() and complete():
            return folder
        archive = self.cache / "cases" / f"{code}.tar"
        self._download(actor, f"/cases/{code}/archive", archive, progress=progress)
        with tarfile.open(archive) as tf:
            tf.extractall(folder, filter="data")
        archive.unlink()
        if not complete():
            raise StudyError(f"case {code}: the downloaded files do not match the study's checksums; try again")
        return folder

    def case_volume(self, actor: Actor, code: str) -> Any:
        from ..io.dicom import load_series

        [vol] = load_series([self.case_folder(actor, code)])
        return vol

    def save_read(self, actor: Actor, code: str, labels: Any, form: Any = None, *,
                  source: SegmentationSource | str = SegmentationSource.CORRECTED, reason: str | None = None,
                  measurements: list[Any] | None = None) -> ReadInfo:
        from ..measurements import to_json_obj

        uid = self._labels_upload(actor, labels)
        form_d = form.to_dict() if hasattr(form, "to_dict") else form
        return self._read_info(self._json("POST", "/reads", actor, json={
            "case": code, "upload": uid, "form": form_d, "source": str(source), "reason": reason,
            "measurements": to_json_obj(measurements) if measurements else None}))

    def sign_read(self, actor: Actor, read_id: int, password: str) -> ReadInfo:
        return self._read_info(self._json("POST", f"/reads/{read_id}/sign", actor, json={"password": password}))

    def submit_read(self, actor: Actor, code: str, labels: Any, form: Any, password: str, *,
                    reason: str | None = None, source: SegmentationSource | str = SegmentationSource.CORRECTED) -> ReadInfo:
        info = self.save_read(actor, code, labels, form, source=source, reason=reason)
        return self.sign_read(actor, info.id, password)

    def get_read(self, actor: Actor, read_id: int) -> ReadInfo:
        return self._fetched(actor, self._read_info(self._json("GET", f"/reads/{read_id}", actor)))

    def my_reads(self, actor: Actor, code: str) -> list[ReadInfo]:
        return [self._fetched(actor, self._read_info(d)) for d in self._json("GET", f"/cases/{code}/my-reads", actor)]

    # --- adjudication ---------------------------------------------------------------------------
    def adjudication_worklist(self, actor: Actor) -> list[AdjudicationEntry]:
        return [AdjudicationEntry(e["code"], AdjudicationState(e["status"]), tuple(e["reasons"]))
                for e in self._json("GET", "/adjudication", actor)]

    def adjudication_view(self, actor: Actor, code: str) -> AdjudicationView:
        d = self._json("GET", f"/adjudication/{code}", actor)
        return AdjudicationView(
            code=d["code"], needs_fibrosis=d["needs_fibrosis"], reasons=tuple(d["reasons"]),
            read_a=self._fetched(actor, self._read_info(d["read_a"])),
            read_b=self._fetched(actor, self._read_info(d["read_b"])),
            differences={k: (v[0], v[1]) for k, v in d["differences"].items()},
        )

    def adjudicate(self, actor: Actor, code: str, password: str, reason: str, *, choose: int | None = None,
                   based_on: int | None = None, labels: Any = None, form: Any = None) -> ReadInfo:
        uid = None if labels is None else self._labels_upload(actor, labels)
        form_d = form.to_dict() if hasattr(form, "to_dict") else form
        return self._read_info(self._json("POST", f"/adjudication/{code}", actor, json={
            "password": password, "reason": reason, "choose": choose, "based_on": based_on,
            "upload": uid, "form": form_d}))

    # --- administrator and statistician ---------------------------------------------------------
    def _import_tar(self, actor: Actor, kind: str, fill: Callable[[tarfile.TarFile], None],
                    accept_burned_in: bool = False) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            tar = Path(tmp) / "import.tar"
            with tarfile.open(tar, "w") as tf:
                fill(tf)
            uid = self._upload(actor, tar, ".tar")
        return list(self._json("POST", "/import", actor, json={
            "upload": uid, "kind": kind, "accept_burned_in": accept_burned_in})["codes"])

    def import_folder(self, actor: Actor, root: str | Path, *, accept_burned_in: bool = False) -> list[str]:
        r = Path(root)
        if not r.is_dir():
            raise study_errors.ImportDataError(f"{r} is not a folder")
        return self._import_tar(actor, "folder", lambda tf: tf.add(r, arcname="root"), accept_burned_in)

    def import_manifest(self, actor: Actor, manifest: str | Path, *, accept_burned_in: bool = False) -> list[str]:
        from ..study.importer import parse_manifest

        return self.import_entries(actor, parse_manifest(manifest), accept_burned_in=accept_burned_in)

    def import_entries(self, actor: Actor, entries: list[Any], *, accept_burned_in: bool = False) -> list[str]:
        """Send each entry's folder (as f1, f2, ...) with the list of subjects and visits; the
        server imports all or nothing."""
        rows = []
        for i, e in enumerate(entries, 1):
            if not Path(e.folder).is_dir():
                raise study_errors.ImportDataError(f"{e.folder} is not a folder")
            rows.append({"subject": e.subject, "visit": e.visit, "folder": f"f{i}",
                         "acquisition_date": e.acquisition_date})
        data = json.dumps(rows).encode()

        def fill(tf: tarfile.TarFile) -> None:
            info = tarfile.TarInfo("entries.json")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            for i, e in enumerate(entries, 1):
                tf.add(e.folder, arcname=f"f{i}")

        return self._import_tar(actor, "entries", fill, accept_burned_in)

    # --- the site's side: originals and PACS send-back -------------------------------------------
    def case_originals(self, actor: Actor, codes: Any = None) -> list[CaseOriginal]:
        """Original UIDs and final reads; each final read's label map downloaded (checked)."""
        params = {} if codes is None else {"codes": ",".join(codes)}
        out = []
        for d in self._json("GET", "/originals", actor, params=params):
            finals = []
            for r in d.pop("final_reads"):
                folder = self.cache / "finals" / str(r["read_id"])
                labels = self._download(actor, f"/originals/{d['code']}/reads/{r['read_id']}/labels",
                                        folder / "labels.nii.gz")
                finals.append(FinalRead(folder=folder, labels_path=labels, **r))
            out.append(CaseOriginal(final_reads=tuple(finals), **d))
        return out

    def case_original(self, actor: Actor, code: str, *, need_final: bool = False) -> CaseOriginal:
        [orig] = self.case_originals(actor, [code])
        if need_final and not orig.final_reads:
            raise study_errors.StudyStateError(
                f"case {code} has no final read yet (status {orig.status}): both reads must be signed "
                "and concordant, or the case adjudicated")
        return orig

    def record_pacs_export(self, actor: Actor, code: str, node: str, read_ids: Any, files: Any,
                           referenced_series_uid: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            tar = Path(tmp) / "sent.tar"
            with tarfile.open(tar, "w") as tf:
                for i, f in enumerate(files):
                    tf.add(f, arcname=f"{i:04d}_{Path(f).name}")
            uid = self._upload(actor, tar, ".tar")
        self._json("POST", "/pacs-exports", actor, json={
            "code": code, "node": node, "read_ids": [int(r) for r in read_ids], "upload": uid,
            "referenced_series_uid": referenced_series_uid})

    def case_links(self, actor: Actor) -> list[dict[str, str]]:
        return list(self._json("GET", "/links", actor))

    def export(self, actor: Actor, out_dir: str | os.PathLike[str], randomization: str | os.PathLike[str] | None = None,
               *, dicom: bool = True, dicom_cases: Any = None) -> ExportResult:
        """Run the export on the server, then download it (resuming, checked) into ``out_dir``."""
        rand = None
        if randomization is not None:
            try:
                rand = Path(randomization).read_text(encoding="utf-8-sig")
            except OSError as exc:
                raise study_errors.ImportDataError(f"{randomization}: cannot read ({exc.strerror})") from exc
        d = self._json("POST", "/export", actor, json={
            "randomization_csv": rand, "dicom": dicom,
            "dicom_cases": None if dicom_cases is None else list(dicom_cases)})
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            tar = self._download(actor, f"/exports/{d['id']}", Path(tmp) / "export.tar", d["sha256"])
            with tarfile.open(tar) as tf:
                tf.extractall(out, filter="data")
        self._json("DELETE", f"/exports/{d['id']}", actor)
        return ExportResult(folder=out, csv_path=out / d["csv"], rows=d["rows"],
                            dicom_files=[out / p for p in d["dicom_files"]], problems=list(d["problems"]))

    def audit_verify(self, anchors: Any = ()) -> VerifyReport:
        d = self._json("POST", "/audit/verify", json={"anchors": list(anchors)})
        return VerifyReport(records=d["records"], problems=list(d["problems"]), notes=list(d["notes"]),
                                  authenticated=d["authenticated"], legacy=d["legacy"])

    def has_audit_key(self) -> bool:
        return bool(self._json("GET", "/audit/key")["has_key"])

    def audit_key_where(self) -> str:
        return f"the study server {self.url}"

    def audit_key_create(self, actor: Actor) -> str:
        return str(self._json("POST", "/audit/key", actor)["anchor"])

    def audit_anchor(self, actor: Actor) -> str:
        return str(self._json("POST", "/audit/anchor", actor)["anchor"])

    def set_password(self, actor: Actor, name: str, new_password: str, reason: str = "") -> None:
        self._json("POST", f"/users/{name}/password", actor, json={"password": new_password, "reason": reason})

    def set_user_role(self, actor: Actor, name: str, role: str | Role, reason: str) -> None:
        self._json("POST", f"/users/{name}/role", actor, json={"role": str(role), "reason": reason})

    def audit_export(self, actor: Actor, path: str | os.PathLike[str]) -> int:
        d = self._json("POST", "/audit/export", actor)
        # only its owner may read an audit export (it names every user and action)
        with open_private(path, "w", encoding="utf-8", newline="") as f:
            f.write(d["csv"])
        return int(d["records"])


def _error(r: httpx.Response) -> Exception:
    """The study error the server raised (same class, same message)."""
    try:
        body = r.json()
    except ValueError:
        body = {}
    name, detail = body.get("error", ""), body.get("detail", "")
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    cls = getattr(study_errors, name, None) or getattr(core_errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, core_errors.ReaderAppError)):
        cls = StudyError
    if r.status_code == 401 and not issubclass(cls, study_errors.AuthenticationError):
        cls = study_errors.AuthenticationError
    return cls(detail or f"the study server answered {r.status_code} {r.reason_phrase}")
