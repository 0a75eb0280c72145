"""The study server: the whole blinded workflow through ``--server`` against a real server process
on a real (throwaway) PostgreSQL whose role cannot change the audit trail, and every refusal the
server must make (someone else's read, a case not on the worklist, administrator-only endpoints,
an expired, forged or missing token, a wrong password at signing)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import studykit as kit
from serverkit import ServerProcess, server_database
from studykit import PASSWORDS, ROLES, cli

from readerapp.server.client import RemoteActor, StudyClient
from readerapp.study.auth import Role
from readerapp.study.errors import AuthenticationError, SessionExpiredError, StudyPermissionError


# --- in-process: token expiry and inactivity need a clock the test controls ----------------------
class _Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def _in_process(tmp_path: Path, clock: _Clock, lifetime: dt.timedelta) -> StudyClient:
    from fastapi.testclient import TestClient

    from readerapp.server.app import create_app
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    svc = StudyService(tmp_path / "s.sqlite", clock=clock)
    svc.create_study(StudyConfig(name="tokens"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    svc.add_user(admin, "reader_a", "reader", PASSWORDS["reader_a"])
    client = StudyClient("http://testserver", cache_dir=tmp_path / "cache")
    client.http = TestClient(create_app(svc, clock=clock, token_lifetime=lifetime), base_url="http://testserver")
    return client


def test_tokens_expire_lapse_when_idle_and_cannot_be_forged(tmp_path: Path) -> None:
    clock = _Clock()
    client = _in_process(tmp_path, clock, dt.timedelta(minutes=90))
    reader = client.login("reader_a", PASSWORDS["reader_a"])
    assert client.worklist(reader) == []
    # idle longer than the study's inactivity time (default 15 min): logged out by the server
    clock.now += dt.timedelta(minutes=16)
    with pytest.raises(SessionExpiredError):
        client.worklist(reader)
    # active all along, but past the token's lifetime: expired
    reader = client.login("reader_a", PASSWORDS["reader_a"])
    for _ in range(8):
        clock.now += dt.timedelta(minutes=10)
        client.worklist(reader)
    clock.now += dt.timedelta(minutes=11)
    with pytest.raises(SessionExpiredError):
        client.worklist(reader)
    # a hand-made administrator gets nothing: the server knows no such token
    forged = RemoteActor(user_id=1, name="admin", role=Role.ADMIN, timeout=dt.timedelta(hours=1), token="x" * 43)
    with pytest.raises(AuthenticationError):
        client.users(forged)
    # a user disabled by an administrator is logged out at once
    reader = client.login("reader_a", PASSWORDS["reader_a"])
    admin = client.login("admin", PASSWORDS["admin"])
    client.set_user_active(admin, "reader_a", False, "left the study")
    with pytest.raises(SessionExpiredError):
        client.worklist(reader)
    client.set_user_active(admin, "reader_a", True, "back")
    # no token at all
    r = client.http.get("/api/worklist")
    assert r.status_code == 401
    # logged out: the token is dead on the server too
    reader = client.login("reader_a", PASSWORDS["reader_a"])
    token = reader.token
    client.logout(reader)
    r = client.http.get("/api/worklist", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_server_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    rc, _out, err = cli(["server", "run", "--db", str(tmp_path / "x.sqlite"), "--host", "0.0.0.0"])
    assert rc == 2 and "without TLS" in err


def test_server_speaks_https_with_the_sites_certificate(tmp_path: Path) -> None:
    import shutil

    from serverkit import self_signed

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = self_signed(tmp_path / "tls")
    db = str(tmp_path / "server.sqlite")
    assert cli(["study", "migrate", "--db", db])[0] == 0
    server = ServerProcess(db, tmp_path / "files", "--tls-cert", str(cert), "--tls-key", str(key),
                           "--token-hours", "0.002")  # tokens live 7.2 s
    try:
        assert server.url.startswith("https://")
        cfg = tmp_path / "study.toml"
        cfg.write_text(kit.CONFIG_TOML, encoding="utf-8")
        # an unknown certificate is refused (no silent fallback to trusting anything)
        rc, _out, err = cli(["study", "create", str(cfg), "--server", server.url])
        assert rc == 2 and "cannot reach the study server" in err
        rc, out, err = cli(["study", "create", str(cfg), "--server", server.url, "--server-ca", str(cert)])
        assert rc == 0, err
        rc, out, err = cli(["user", "add", "--server", server.url, "--server-ca", str(cert), "--name", "admin",
                            "--role", "admin"], PASSWORDS["admin"] + "\n")
        assert rc == 0 and "added admin admin" in out, err
        # the real server expires a token after its lifetime, however busy its user
        import time

        client = StudyClient(server.url, cafile=str(cert), cache_dir=tmp_path / "cache")
        admin = client.login("admin", PASSWORDS["admin"])
        assert client.users(admin) == [("admin", "admin", True)]
        time.sleep(7.5)
        with pytest.raises(SessionExpiredError):
            client.users(admin)
    finally:
        server.stop()


def test_readerapp_server_console_script_is_the_server_command(capsys: pytest.CaptureFixture[str]) -> None:
    from readerapp.commands.server import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0 and "--tls-cert" in capsys.readouterr().out


def test_server_never_migrates_a_database(tmp_path: Path) -> None:
    from readerapp.server.run import serve

    with pytest.raises(Exception, match="readerapp study migrate"):
        serve(f"sqlite:///{tmp_path / 'new.sqlite'}", tmp_path / "files")


# --- a real server process on a real PostgreSQL ----------------------------------------------------
@pytest.fixture
def pg_server(pg_cluster, tmp_path: Path):  # type: ignore[no-untyped-def]
    owner_url, server_url = server_database(pg_cluster)
    server = ServerProcess(server_url, tmp_path / "server-files")
    try:
        yield owner_url, server_url, server
    finally:
        server.stop()


def _labels_file(path: Path, raw: kit.RawStudy, key: tuple[str, str], lab: np.ndarray) -> Path:
    from readerapp.io.dicom import load_series
    from readerapp.io.labelmap import write_labelmap

    folder = raw.manifest.parent / "raw" / f"s{int(key[0][5:8]) - 1}" / f"v{kit.VISITS.index(key[1])}"
    [vol] = load_series([folder])
    return write_labelmap(path, lab, vol)


@pytest.mark.postgres
@pytest.mark.slow
def test_blinded_workflow_through_the_server(pg_server, raw_study: kit.RawStudy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    owner_url, server_url, server = pg_server
    url = server.url
    s = ["--server", url]
    cfg = tmp_path / "study.toml"
    cfg.write_text(kit.CONFIG_TOML, encoding="utf-8")

    # --- the administrator sets the study up through the server --------------------------------
    rc, out, err = cli(["study", "create", str(cfg), *s])
    assert rc == 0, err
    assert url in out
    assert cli(["user", "add", *s, "--name", "admin", "--role", "admin"], PASSWORDS["admin"] + "\n")[0] == 0
    for name, role in ROLES.items():
        if name != "admin":
            rc, out, err = cli(["user", "add", *s, "--name", name, "--role", role],
                               f"{PASSWORDS[name]}\n{PASSWORDS['admin']}\n")
            assert rc == 0, err
    rc, out, err = cli(["user", "add", *s, "--name", "reader_c", "--role", "reader"],
                       f"reader-c-secret\n{PASSWORDS['admin']}\n")
    assert rc == 0, err
    rc, out, err = cli(["study", "import", *s, "--manifest", str(raw_study.manifest)], PASSWORDS["admin"])
    assert rc == 0, err
    assert "imported 12 scan(s)" in out
    rc, out, err = cli(["study", "links", *s, "--user", "admin"], PASSWORDS["admin"])
    assert rc == 0, err
    by_code = {line.split(",")[0]: (line.split(",")[1], line.split(",")[2]) for line in out.splitlines()[1:]}
    assert len(by_code) == 12

    client = StudyClient(url, cache_dir=tmp_path / "client-cache")
    wf = kit.Workflow(db=url, storage=tmp_path / "none", raw=raw_study, codes={v: k for k, v in by_code.items()},
                      labels={}, read_ids={}, export_dir=tmp_path / "export")
    wf.discordant_code = wf.codes[kit.DISCORDANT]

    # --- reader A: one case through the command line (a label file), the rest through the client
    code0 = next(iter(sorted(by_code)))
    scan0 = raw_study.scans[by_code[code0]]
    lab0 = kit.reader_labels(scan0, "reader_a", big_extra=by_code[code0] == kit.DISCORDANT)
    labels_file = _labels_file(tmp_path / "a0.nii.gz", raw_study, by_code[code0], lab0)
    form_file = kit.write_form(tmp_path / "form.json", kit.form_for(by_code[code0][1]))
    rc, out, err = cli(["read", "submit", *s, "--case", code0, "--user", "reader_a", "--labels", str(labels_file),
                        "--form", str(form_file), "--sign"], PASSWORDS["reader_a"])
    assert rc == 0, err
    first = json.loads(out)
    assert first["status"] == "signed" and first["version"] == 1
    wf.labels[(code0, "reader_a")] = lab0
    wf.read_ids[(code0, "reader_a")] = first["read_id"]

    a = client.login("reader_a", PASSWORDS["reader_a"])
    # a download that broke off half-way resumes with a Range request
    auth = {"Authorization": f"Bearer {a.token}"}
    whole = client.http.get(f"/api/cases/{code0}/archive", headers=auth)
    assert whole.status_code == 200 and len(whole.content) > 1000
    rest = client.http.get(f"/api/cases/{code0}/archive", headers={**auth, "Range": "bytes=1000-"})
    assert rest.status_code == 206 and rest.content == whole.content[1000:]
    part = tmp_path / "client-cache" / "cases" / f"{code0}.tar.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(whole.content[:1000])
    folder = client.case_folder(a, code0)  # de-identified files, checked by SHA-256
    assert not part.exists()
    assert len(list(folder.glob("*.dcm"))) == kit.SHAPE[0]
    for e in client.worklist(a):
        if e.code == code0:
            continue
        key = by_code[e.code]
        lab = kit.reader_labels(raw_study.scans[key], "reader_a", big_extra=key == kit.DISCORDANT)
        info = client.submit_read(a, e.code, lab, kit.form_for(key[1]), PASSWORDS["reader_a"])
        wf.labels[(e.code, "reader_a")] = lab
        wf.read_ids[(e.code, "reader_a")] = info.id
    kit.submit_all(client, wf, "reader_b", by_code)
    b = client.login("reader_b", PASSWORDS["reader_b"])
    assert {e.status for e in client.worklist(b)} == {"signed"}

    # --- refusals ---------------------------------------------------------------------------------
    b_read = wf.read_ids[(code0, "reader_b")]
    with pytest.raises(StudyPermissionError):
        client.get_read(a, b_read)  # another reader's read
    assert client.http.get(f"/api/reads/{b_read}/labels",
                           headers={"Authorization": f"Bearer {a.token}"}).status_code == 403
    c = client.login("reader_c", "reader-c-secret")
    assert client.worklist(c) == []  # every case already has its two readers
    with pytest.raises(StudyPermissionError, match="not on your worklist"):
        client.case_folder(c, code0)  # a case not on his worklist
    assert client.http.get(f"/api/cases/{code0}/files/00001.dcm",
                           headers={"Authorization": f"Bearer {c.token}"}).status_code == 403
    for method, path in (("GET", "/api/users"), ("GET", "/api/links"), ("POST", "/api/audit/export"),
                         ("POST", "/api/import")):
        r = client.http.request(method, path, headers={"Authorization": f"Bearer {a.token}"},
                                json={"upload": "x", "kind": "folder"})
        assert r.status_code == 403, (path, r.text)
    assert client.http.get("/api/worklist").status_code == 401  # no token
    assert client.http.get("/api/worklist", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    rc, _out, err = cli(["worklist", *s, "--user", "reader_a"], "wrong-password")
    assert rc == 2 and "unknown user or wrong password" in err
    # a signature needs the password again
    spare = client.save_read(a, code0, wf.labels[(code0, "reader_a")], kit.form_for(by_code[code0][1]),
                             reason="second look")
    with pytest.raises(AuthenticationError):
        client.sign_read(a, spare.id, "not-my-password")
    a = client.login("reader_a", PASSWORDS["reader_a"])
    assert client.get_read(a, spare.id).status == "draft"
    assert client.my_reads(a, code0)[-1].labels_path.is_file()

    # --- adjudication and export through the command line --------------------------------------
    rc, out, err = cli(["worklist", *s, "--user", "adj", "--json"], PASSWORDS["adj"])
    assert rc == 0, err
    assert [row["code"] for row in json.loads(out)] == [wf.discordant_code]
    ra = wf.read_ids[(wf.discordant_code, "reader_a")]
    rc, out, err = cli(["adjudicate", *s, "--case", wf.discordant_code, "--user", "adj", "--choose", str(ra),
                        "--reason", "reader A outlined the lesion correctly"], PASSWORDS["adj"])
    assert rc == 0, err
    assert json.loads(out)["final_read_id"] == ra
    rc, out, err = cli(["export", *s, "--user", "stat", "--out", str(wf.export_dir)], PASSWORDS["stat"])
    assert rc == 0, err
    assert kit.check_export(wf, wf.export_dir / "endpoints.csv") > 0
    assert list(wf.export_dir.rglob("*.dcm"))
    # the site's send-back to the PACS: originals and final reads through the server, recorded there
    st = client.login("stat", PASSWORDS["stat"])
    orig = client.case_original(st, wf.discordant_code, need_final=True)
    [final] = orig.final_reads
    assert final.read_id == ra and final.labels_path.is_file()
    assert orig.subject == kit.DISCORDANT[0]
    sent = sorted(folder.glob("*.dcm"))[:2]
    client.record_pacs_export(st, wf.discordant_code, "main", [ra], sent, orig.original_series_uid)
    with pytest.raises(StudyPermissionError):
        client.case_original(a, wf.discordant_code)  # a reader never sees the originals
    rc, out, err = cli(["audit", "verify", *s])
    assert rc == 0 and "audit trail intact" in out, out + err
    rc, out, err = cli(["audit", "export", *s, "--user", "admin", "--out", str(tmp_path / "audit.csv")],
                       PASSWORDS["admin"])
    assert rc == 0, err

    # --- nothing identifying reached a reader's machine -----------------------------------------
    import pydicom

    for f in (tmp_path / "client-cache" / "cases").rglob("*.dcm"):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        text = repr(ds)
        assert not any(v in text for v in ("Zyxwort", "MRN77", "Jinyintan"))

    # --- the server's database role cannot rewrite the audit trail ------------------------------
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ProgrammingError

    eng = create_engine(server_url)
    try:
        with eng.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM audit_log")) > 0
            refused = ["UPDATE audit_log SET reason = 'changed'", "DELETE FROM audit_log",
                       "TRUNCATE audit_log"]
            if int(conn.scalar(text("SHOW server_version_num"))) >= 150000:  # PUBLIC lost CREATE in 15
                refused.append("CREATE TABLE sneaky (x int)")
            for sql in refused:
                with pytest.raises(ProgrammingError, match="permission denied"):
                    conn.execute(text(sql))
                conn.rollback()
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_clients_do_not_migrate_a_server_database(pg_cluster) -> None:  # type: ignore[no-untyped-def]
    from readerapp.study.errors import StudyError
    from readerapp.study.service import StudyService

    url = pg_cluster.create_database(migrated=False)
    with pytest.raises(StudyError, match="has no study schema.*readerapp study migrate"):
        StudyService(url, "/nonexistent")
    rc, out, err = cli(["study", "migrate", "--db", url])
    assert rc == 0, err
    assert "schema none -> " in out


def test_uploads_resume_at_the_servers_offset(tmp_path: Path) -> None:
    clock = _Clock()
    client = _in_process(tmp_path, clock, dt.timedelta(hours=1))
    a = client.login("reader_a", PASSWORDS["reader_a"])
    data = bytes(range(256)) * 4000
    import hashlib

    h = {"Authorization": f"Bearer {a.token}"}
    digest = hashlib.sha256(data).hexdigest()
    # scans for import are an administrator's upload
    assert client.http.post("/api/uploads", headers=h,
                            json={"size": len(data), "sha256": digest, "suffix": ".tar"}).status_code == 403
    uid = client.http.post("/api/uploads", headers=h,
                           json={"size": len(data), "sha256": digest, "suffix": ".npy"}).json()["id"]
    assert client.http.put(f"/api/uploads/{uid}", params={"offset": 0}, content=data[:1000], headers=h
                           ).json()["offset"] == 1000
    # a retry at a stale offset is told where the server is
    r = client.http.put(f"/api/uploads/{uid}", params={"offset": 0}, content=data[:1000], headers=h)
    assert r.status_code == 409 and r.json()["offset"] == 1000
    assert client.http.get(f"/api/uploads/{uid}", headers=h).json()["offset"] == 1000
    assert client.http.put(f"/api/uploads/{uid}", params={"offset": 1000}, content=data[1000:], headers=h
                           ).json()["offset"] == len(data)
    # another user cannot see it
    client.http.post("/api/logout", headers=h)
    r = client.http.get(f"/api/uploads/{uid}", headers=h)
    assert r.status_code == 401
    assert isinstance(r, httpx.Response)


def test_a_hand_made_or_promoted_actor_is_refused_by_the_local_service(tmp_path: Path) -> None:
    from readerapp.study.auth import Actor
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="forgery"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    svc.add_user(admin, "reader_a", "reader", PASSWORDS["reader_a"])
    forged = Actor(user_id=1, name="admin", role=Role.ADMIN, timeout=dt.timedelta(hours=1))
    with pytest.raises(AuthenticationError, match="logged in with a password"):
        svc.users(forged)
    reader = svc.login("reader_a", PASSWORDS["reader_a"])
    reader.role = Role.ADMIN
    with pytest.raises(AuthenticationError):
        svc.users(reader)
    assert [u[0] for u in svc.users(admin)] == ["admin", "reader_a"]


class _FakePacs:
    """One original series; keeps what it is sent (as tests/pacs/test_send_case.py)."""

    name = "fake"

    def __init__(self, folder: Path, study_uid: str, series_uid: str) -> None:
        self.folder, self.study_uid, self.series_uid = folder, study_uid, series_uid
        self.received: list[Path] = []

    def find_series(self, study_uid: str, modality: str = "CT") -> list:  # type: ignore[type-arg]
        from readerapp.pacs.models import SeriesHit

        return [SeriesHit(self.study_uid, self.series_uid, "CT")] if study_uid == self.study_uid else []

    def retrieve_series(self, study_uid: str, series_uid: str, dest: Path, progress=None):  # type: ignore[no-untyped-def]
        import shutil

        from readerapp.pacs.models import RetrieveResult

        out = Path(dest) / study_uid / series_uid
        shutil.copytree(self.folder, out, dirs_exist_ok=True)
        n = len(list(out.glob("*.dcm")))
        return RetrieveResult(out, study_uid, series_uid, expected=n, received=n)

    def send(self, files: list[Path], progress=None):  # type: ignore[no-untyped-def]
        from readerapp.pacs.models import SendResult

        self.received += [Path(f) for f in files]
        return SendResult(sent=len(files))

    def close(self) -> None:
        pass


def test_pacs_retrieve_and_send_back_through_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PACS use cases on a study server: retrieve into the study (imported through the
    server), and send the final reads back (originals and reads from the server, audited there)."""
    pytest.importorskip("highdicom")
    import pydicom

    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    monkeypatch.setenv("READERAPP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("READERAPP_SITE_CONFIG_DIR", str(tmp_path / "site-config"))
    monkeypatch.setenv("READERAPP_DATA_DIR", str(tmp_path / "data"))
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=5)
    raw = tmp_path / "pacs-holds"
    write_synthetic_series(ph.volume, raw)
    first = pydicom.dcmread(sorted(raw.glob("*.dcm"))[0])
    pacs = _FakePacs(raw, str(first.StudyInstanceUID), str(first.SeriesInstanceUID))
    monkeypatch.setattr("readerapp.pacs.open_client", lambda *a, **k: pacs)
    monkeypatch.setattr("readerapp.commands.pacs._client", lambda name: pacs)

    db = str(tmp_path / "server" / "s.sqlite")
    assert cli(["study", "migrate", "--db", db])[0] == 0
    server = ServerProcess(db, tmp_path / "server" / "files")
    try:
        s = ["--server", server.url]
        cfg = tmp_path / "study.toml"
        cfg.write_text(kit.CONFIG_TOML, encoding="utf-8")
        assert cli(["study", "create", str(cfg), *s])[0] == 0
        assert cli(["user", "add", *s, "--name", "admin", "--role", "admin"], PASSWORDS["admin"] + "\n")[0] == 0
        for name in ("reader_a", "reader_b", "stat"):
            rc, _o, err = cli(["user", "add", *s, "--name", name, "--role", ROLES[name]],
                              f"{PASSWORDS[name]}\n{PASSWORDS['admin']}\n")
            assert rc == 0, err
        rc, out, err = cli(["pacs", "retrieve", "--study", pacs.study_uid, "--subject", "S1", "--visit", "baseline",
                            "--admin", "admin", *s], PASSWORDS["admin"] + "\n")
        assert rc == 0, err
        code = out.strip().splitlines()[-1].split()[-1]
        assert not list((tmp_path / "data" / "pacs-staging").rglob("*.dcm"))  # identifiable copy gone

        client = StudyClient(server.url, cache_dir=tmp_path / "cache")
        lab = ph.truth.astype(np.uint8)
        ids = [client.submit_read(client.login(r, PASSWORDS[r]), code, lab, kit.form_for("baseline"), PASSWORDS[r]).id
               for r in ("reader_a", "reader_b")]
        rc, out, err = cli(["pacs", "send-read", "--case", code, "--user", "stat", "--quiet", *s], PASSWORDS["stat"] + "\n")
        assert rc == 0, err
        assert "4 object(s)" in out and len(pacs.received) == 4
        admin = client.login("admin", PASSWORDS["admin"])
        assert client.users(admin)  # still fine
        rc, out, err = cli(["audit", "export", *s, "--user", "admin", "--out", str(tmp_path / "a.csv")],
                           PASSWORDS["admin"])
        assert rc == 0, err
        trail = (tmp_path / "a.csv").read_text(encoding="utf-8")
        assert "export.pacs" in trail and all(str(i) in trail for i in ids)
        assert client.audit_verify().ok
    finally:
        server.stop()


def test_a_read_already_in_the_study_cannot_be_submitted_again(tmp_path: Path) -> None:
    """The tester's finding: one reader submitted the other's read folder as her own."""
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="copy"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    for name in ("reader_a", "reader_b"):
        svc.add_user(admin, name, "reader", PASSWORDS[name])
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=4)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "S1" / "baseline")
    (code,) = svc.import_folder(admin, tmp_path / "raw")
    a = svc.login("reader_a", PASSWORDS["reader_a"])
    info = svc.submit_read(a, code, ph.truth.astype(np.uint8), kit.form_for("baseline"), PASSWORDS["reader_a"])
    b = svc.login("reader_b", PASSWORDS["reader_b"])
    rc, _out, err = cli(["read", "submit", "--db", str(tmp_path / "s.sqlite"), "--case", code, "--user", "reader_b",
                         "--labels", str(info.folder), "--sign"], PASSWORDS["reader_b"])
    assert rc == 2 and "not a read already in the study" in err
    with pytest.raises(StudyPermissionError):
        svc.save_read(b, code, info.labels_path, kit.form_for("baseline"))
