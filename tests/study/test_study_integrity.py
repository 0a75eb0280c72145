"""The audit trail survives its database: MACs under a key file the database does not hold, signed
anchors, one-snapshot verification; log-in answers alike and stores no mistyped name."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import studykit as kit
from sqlalchemy import text
from studykit import PASSWORDS, cli

from readerapp.study import audit
from readerapp.study.auditkey import AuditKeyError
from readerapp.study.config import StudyConfig
from readerapp.study.errors import AuthenticationError, StudyPermissionError
from readerapp.study.models import AuditLog
from readerapp.study.service import StudyService


def _study(tmp_path: Path, db: str | None = None, storage: Path | None = None) -> StudyService:
    svc = StudyService(db or tmp_path / "s.sqlite", storage)
    svc.create_study(StudyConfig(name="T"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    for name in ("reader_a", "reader_b", "adj", "stat"):
        svc.add_user(admin, name, kit.ROLES[name], PASSWORDS[name])
    return svc


@pytest.fixture
def with_case(tmp_path: Path) -> StudyService:
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    svc = _study(tmp_path)
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=1)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "SUBJ-1" / "day90")
    admin = svc.login("admin", PASSWORDS["admin"])
    svc.import_folder(admin, tmp_path / "raw")
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            svc.login("reader_b", "wrong password!")
    return svc


def _rechain(svc: StudyService) -> None:
    """The tester's attack, with write access to the database but not to the key file: promote a
    reader to admin, change a link, delete the failed log-ins, then re-chain the whole trail with
    the program's own hash function (and a fitting audit record, so the replay matches)."""
    from sqlalchemy import select

    with svc.db.transaction() as s:
        s.execute(text("UPDATE users SET role = 'admin' WHERE name = 'reader_a'"))
        s.execute(text("UPDATE case_links SET subject = 'SUBJ-9' WHERE subject = 'SUBJ-1'"))
        s.execute(text("DELETE FROM audit_log WHERE action = 'login.failed'"))
        recs = list(s.scalars(select(AuditLog).order_by(AuditLog.seq)))
        # rewrite the snapshots the replay would compare with
        for r in recs:
            if r.entity == "users" and r.new_json and json.loads(r.new_json)["name"] == "reader_a":
                r.new_json = r.new_json.replace('"role":"reader"', '"role":"admin"')
            if r.entity == "case_links" and r.new_json:
                r.new_json = audit.canonical({**json.loads(r.new_json), "subject": "SUBJ-9"})
        s.flush()
        s.execute(text("DELETE FROM audit_log"))
        s.flush()
        prev = audit.GENESIS
        for i, r in enumerate(recs, 1):
            s.expunge(r)
            new = AuditLog(seq=i, ts=r.ts, user_id=r.user_id, user_name=r.user_name, action=r.action,
                           entity=r.entity, entity_id=r.entity_id, old_json=r.old_json,
                           new_json=r.new_json, reason=r.reason, prev_hash=prev, mac=r.mac)
            new.hash = audit.record_hash(prev, new)
            prev = new.hash
            s.add(new)
        s.flush()
        s.execute(text("UPDATE audit_head SET seq = :n, hash = :h"), {"n": len(recs), "h": prev})


def test_key_file_is_created_private_beside_the_study(tmp_path: Path) -> None:
    svc = _study(tmp_path)
    key = tmp_path / "s.audit-key"
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert svc.db.audit_key is not None
    rep = svc.audit_verify()
    assert rep.ok and rep.authenticated == rep.records > 5 and rep.legacy == 0
    with svc.db.transaction() as s:
        assert all(r.mac for r in s.query(AuditLog))


def test_consistent_rewrite_without_the_key_is_detected(with_case: StudyService) -> None:
    svc = with_case
    admin = svc.login("admin", PASSWORDS["admin"])
    anchor = svc.audit_anchor(admin)
    assert svc.audit_verify([anchor]).ok
    _rechain(svc)
    # the chain alone is consistent again: that was the tester's finding
    keyless = StudyService(svc.db.url, audit_key=svc.db.audit_key_path.with_name("absent.key"))
    rep = keyless.audit_verify()
    assert rep.ok and any("no audit key at hand" in n for n in rep.notes)
    # with the key, every rewritten record and the head are flagged
    rep = svc.audit_verify()
    assert not rep.ok
    assert any("not authenticated by the study's audit key" in p for p in rep.problems), rep.problems
    # without the key, the sponsor's anchor catches it
    rep = keyless.audit_verify([anchor])
    assert any("is not the one anchored" in p or "not in the trail" in p for p in rep.problems), rep.problems
    rc, out, _ = cli(["audit", "verify", "--db", svc.db.url.removeprefix("sqlite:///")])
    assert rc == 3 and "FAILED" in out


def test_forged_anchor_and_other_key_are_refused(tmp_path: Path) -> None:
    svc = _study(tmp_path / "a")
    other = _study(tmp_path / "b")
    a_anchor = svc.audit_anchor(svc.login("admin", PASSWORDS["admin"]))
    rep = other.audit_verify([a_anchor])
    assert any("not signed by this study's audit key" in p for p in rep.problems)
    head, body, sig = a_anchor.split(".")
    tampered = ".".join([head, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], sig])
    assert any("anchor" in p for p in svc.audit_verify([tampered]).problems)


def test_appending_without_the_key_is_refused(tmp_path: Path) -> None:
    svc = _study(tmp_path)
    keyless = StudyService(tmp_path / "s.sqlite", audit_key=tmp_path / "elsewhere.key")
    with pytest.raises(AuditKeyError, match="no key file was found"):
        keyless.login("admin", PASSWORDS["admin"])
    assert svc.audit_verify().ok


def test_legacy_study_gets_a_key_and_stays_verifiable(tmp_path: Path) -> None:
    svc = _study(tmp_path)
    # a study from before audit keys: no MACs, no key id, no key file
    with svc.db.engine.begin() as c:
        c.execute(text("UPDATE audit_log SET mac = NULL"))
        c.execute(text("UPDATE audit_head SET key_id = NULL, mac = NULL"))
    (tmp_path / "s.audit-key").unlink()
    old = StudyService(tmp_path / "s.sqlite")
    assert old.audit_verify().ok
    old.login("reader_a", PASSWORDS["reader_a"])  # still works, unkeyed
    rc, out, err = cli(["audit", "key", "create", "--db", str(tmp_path / "s.sqlite"), "--user", "admin"],
                       PASSWORDS["admin"])
    assert rc == 0, err
    first_anchor = out.strip().splitlines()[-1]
    new = StudyService(tmp_path / "s.sqlite")
    new.login("reader_b", PASSWORDS["reader_b"])
    rep = new.audit_verify([first_anchor])
    assert rep.ok, rep.problems
    assert rep.legacy > 5 and rep.authenticated >= 2
    assert any("legacy record" in n for n in rep.notes)
    # stripping a MAC after the key existed is not passed off as legacy
    with new.db.engine.begin() as c:
        c.execute(text("UPDATE audit_log SET mac = NULL WHERE seq = (SELECT MAX(seq) FROM audit_log)"))
    assert not new.audit_verify().ok


def test_anchor_command_and_exports_carry_the_signed_head(tmp_path: Path) -> None:
    _study(tmp_path)
    db = str(tmp_path / "s.sqlite")
    rc, out, err = cli(["audit", "anchor", "--db", db, "--user", "admin", "--out", str(tmp_path / "a.txt")],
                       PASSWORDS["admin"])
    assert rc == 0, err
    anchor = out.strip()
    assert anchor.startswith("RA-ANCHOR-1.")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o600
    rc, out, _ = cli(["audit", "verify", "--db", db, "--anchor", str(tmp_path / "a.txt")])
    assert rc == 0 and "1 anchor(s) match" in out and "authenticated by the audit key" in out
    rc, _, err = cli(["audit", "export", "--db", db, "--user", "admin", "--out", str(tmp_path / "t.csv")],
                     PASSWORDS["admin"])
    assert rc == 0, err
    sidecar = tmp_path / "t.csv.anchor.txt"
    assert stat.S_IMODE((tmp_path / "t.csv").stat().st_mode) == 0o600
    rc, out, _ = cli(["audit", "verify", "--db", db, "--anchor", str(sidecar)])
    assert rc == 0, out


def test_account_changes_are_audited_and_unknown_names_not_stored(tmp_path: Path, monkeypatch) -> None:
    import readerapp.study.service as service

    svc = _study(tmp_path)
    calls: list[str] = []
    real = service.dummy_check
    monkeypatch.setattr(service, "dummy_check", lambda pw: (calls.append(pw), real(pw)))
    typed = "MySecretPassw0rd"  # a password typed into the name field
    with pytest.raises(AuthenticationError) as unknown:
        svc.login(typed, "whatever-1")
    with pytest.raises(AuthenticationError) as wrong:
        svc.login("reader_a", "not the password")
    assert str(unknown.value) == str(wrong.value)
    assert calls == ["whatever-1"]  # the unknown name cost one password check too
    admin = svc.login("admin", PASSWORDS["admin"])
    svc.set_user_active(admin, "adj", False, "left the study")
    with pytest.raises(AuthenticationError) as disabled:
        svc.login("adj", "a wrong one")
    assert str(disabled.value) == str(wrong.value)  # a stranger cannot tell it is disabled
    svc.set_user_role(admin, "reader_b", "adjudicator", "second adjudicator")
    with pytest.raises(StudyPermissionError):
        svc.set_password(svc.login("reader_a", PASSWORDS["reader_a"]), "reader_b", "new-password-9")
    recs = svc.audit_records(admin)
    dump = "\n".join(f"{r.user_name} {r.entity_id} {r.old_json} {r.new_json} {r.reason}" for r in recs)
    assert typed not in dump
    failed = [r for r in recs if r.action == "login.failed"]
    assert failed[0].user_name == "unknown user" and failed[0].entity_id.startswith("name-hmac:")
    assert json.loads(failed[1].new_json) == {"failed_count": 1, "locked_until": None}
    assert {"user.disable", "user.role"} <= {r.action for r in recs}
    assert svc.audit_verify().ok


def test_user_passwd_and_disable_from_the_command_line(tmp_path: Path) -> None:
    _study(tmp_path)
    db = str(tmp_path / "s.sqlite")
    rc, out, err = cli(["user", "passwd", "--db", db, "--name", "reader_a", "--admin", "admin"],
                       "reader-a-new-secret\n" + PASSWORDS["admin"])
    assert rc == 0, err
    rc, out, err = cli(["user", "disable", "--db", db, "--name", "reader_b", "--reason", "left"],
                       PASSWORDS["admin"])
    assert rc == 0, err
    svc = StudyService(db)
    svc.login("reader_a", "reader-a-new-secret")
    with pytest.raises(AuthenticationError):
        svc.login("reader_b", PASSWORDS["reader_b"])
    actions = [r.action for r in svc.audit_records(svc.login("admin", PASSWORDS["admin"]))]
    assert "user.password" in actions and "user.disable" in actions
    assert svc.audit_verify().ok


@pytest.mark.postgres
@pytest.mark.slow
def test_verify_reads_one_snapshot_while_others_log_in(pg_url: str, tmp_path: Path) -> None:
    """Log-ins commit while verify reads the trail and the head: it must never report tampering
    that did not happen (the trail and the head row are read in one REPEATABLE READ snapshot)."""
    import threading

    svc = _study(tmp_path, pg_url, tmp_path / "storage")
    stop = threading.Event()
    errors: list[BaseException] = []
    logins = [0]

    def log_in(name: str) -> None:
        try:
            mine = StudyService(pg_url, tmp_path / "storage")
            while not stop.is_set():
                mine.login(name, PASSWORDS[name])
                logins[0] += 1
            mine.db.dispose()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=log_in, args=(n,)) for n in ("reader_a", "reader_b")]
    for t in threads:
        t.start()
    try:
        import time

        reports = []
        deadline = time.monotonic() + 90
        while (len(reports) < 10 or logins[0] < 10) and time.monotonic() < deadline:
            reports.append(svc.audit_verify())
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    assert logins[0] >= 10
    assert all(r.ok for r in reports), [r.problems for r in reports if not r.ok]
    assert len({r.records for r in reports}) > 1  # the trail did grow while it was verified


def test_csv_cells_cannot_run_as_formulas() -> None:
    from readerapp.study.private import csv_cell

    for bad in ("=HYPERLINK(\"http://x\")", "+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(bad) == "'" + bad
    for fine in ("-0.500000", "-12", "+3.5", "1e-3", "-1.5E+02", "SUBJ-001", "", "day90"):
        assert csv_cell(fine) == fine
    assert csv_cell(-1.5) == -1.5 and csv_cell(None) is None


def test_exports_are_private_and_carry_a_verifiable_anchor(tmp_path: Path) -> None:
    svc = _study(tmp_path)
    stat_user = svc.login("stat", PASSWORDS["stat"])
    rand = tmp_path / "rand.csv"
    rand.write_text("subject,arm\n=cmd|' /C calc'!A0,MSC\n", encoding="utf-8")
    res = svc.export(stat_user, tmp_path / "out", rand, dicom=False)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
    assert stat.S_IMODE(res.csv_path.stat().st_mode) == 0o600
    anchor = (tmp_path / "out" / "audit-anchor.txt").read_text().strip()
    assert stat.S_IMODE((tmp_path / "out" / "audit-anchor.txt").stat().st_mode) == 0o600
    assert svc.audit_verify([anchor]).ok
