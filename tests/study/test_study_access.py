"""Log-in, roles, lockout, inactivity, signed-read versions, import checks and tamper detection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import studykit as kit
from sqlalchemy import text
from studykit import PASSWORDS, cli

from readerapp.study.config import StudyConfig
from readerapp.study.errors import (
    AccountLockedError,
    AuthenticationError,
    ImportDataError,
    SessionExpiredError,
    StudyError,
    StudyPermissionError,
    StudyStateError,
)
from readerapp.study.service import StudyService


class FakeClock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += dt.timedelta(minutes=minutes)


def _study(tmp_path: Path, clock=None) -> StudyService:
    svc = StudyService(tmp_path / "s.sqlite", clock=clock or FakeClock())
    svc.create_study(StudyConfig(name="T"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    for name in ("reader_a", "reader_b", "adj", "stat"):
        svc.add_user(admin, name, kit.ROLES[name], PASSWORDS[name])
    return svc


def test_first_user_must_be_admin_and_roles_are_enforced(tmp_path: Path) -> None:
    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="T"))
    with pytest.raises(StudyPermissionError):
        svc.add_user(None, "r", "reader", "password123")
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    with pytest.raises(StudyPermissionError):
        svc.add_user(None, "r", "reader", "password123")  # now an administrator must act
    admin = svc.login("admin", PASSWORDS["admin"])
    svc.add_user(admin, "r", "reader", "password123")
    r = svc.login("r", "password123")
    with pytest.raises(StudyPermissionError, match="admin"):
        svc.add_user(r, "x", "reader", "password123")
    with pytest.raises(StudyPermissionError):
        svc.import_manifest(r, tmp_path / "none.csv")
    with pytest.raises(StudyError, match="8 characters"):
        svc.add_user(admin, "y", "reader", "short")
    with pytest.raises(StudyStateError):
        svc.create_study(StudyConfig(name="again"), admin)
    assert svc.worklist(r) == []
    # passwords are stored as argon2 hashes, never in clear
    with svc.db.engine.connect() as c:
        hashes = [h for (h,) in c.execute(text("SELECT password_hash FROM users"))]
    assert all(h.startswith("$argon2id$") for h in hashes) and "password123" not in "".join(hashes)


def test_lockout_after_repeated_failures_and_unlock_after_the_wait(tmp_path: Path) -> None:
    clock = FakeClock()
    svc = _study(tmp_path, clock)
    for _ in range(4):
        with pytest.raises(AuthenticationError) as exc:
            svc.login("reader_a", "wrong-password")
        assert not isinstance(exc.value, AccountLockedError)
    with pytest.raises(AccountLockedError):
        svc.login("reader_a", "wrong-password")  # the 5th failure locks
    with pytest.raises(AccountLockedError):
        svc.login("reader_a", PASSWORDS["reader_a"])  # even the right password, while locked
    svc.login("reader_b", PASSWORDS["reader_b"])  # others are unaffected
    clock.advance(16)
    assert svc.login("reader_a", PASSWORDS["reader_a"]).name == "reader_a"
    with pytest.raises(AuthenticationError):
        svc.login("nobody", "whatever-password")
    actions = [r.action for r in svc.audit_records(svc.login("admin", PASSWORDS["admin"]))]
    assert actions.count("login.failed") == 5 and actions.count("login.locked") == 1
    assert actions.count("login.refused") == 1


def test_inactivity_logs_out(tmp_path: Path) -> None:
    clock = FakeClock()
    svc = _study(tmp_path, clock)
    r = svc.login("reader_a", PASSWORDS["reader_a"])
    clock.advance(10)
    svc.worklist(r)  # activity resets the timer
    clock.advance(14)
    svc.worklist(r)
    clock.advance(15.5)
    with pytest.raises(SessionExpiredError, match="log in again"):
        svc.worklist(r)
    with pytest.raises(SessionExpiredError):
        svc.worklist(r)  # stays logged out


def _tamper(svc: StudyService, sql: str) -> list[str]:
    with svc.db.engine.begin() as c:
        for statement in sql.split(";"):
            c.execute(text(statement))
    return svc.audit_verify().problems


@pytest.mark.parametrize(
    "sql, expect",
    [
        ("UPDATE users SET role = 'admin' WHERE name = 'reader_a'", "users row 2 was changed outside the program (column(s) role)"),
        ("DELETE FROM auth_state WHERE user_id = 5; DELETE FROM users WHERE name = 'stat'", "users row 5 was deleted outside the program"),
        ("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 3", "audit record 3"),
        ("DELETE FROM audit_log WHERE seq = 4", "audit record(s) 4..4 are missing"),
        ("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)", "removed from the end"),
        ("INSERT INTO randomization (subject, arm, imported_at) VALUES ('S9', 'MSC', 'x')",
         "randomization row S9 is not in the audit trail"),
        ("UPDATE study SET config_json = replace(config_json, '5.0', '50.0')", "study row 1 was changed"),
    ],
)
def test_audit_verify_catches_tampering_behind_the_programs_back(tmp_path: Path, sql: str, expect: str) -> None:
    svc = _study(tmp_path)
    assert svc.audit_verify().ok
    problems = _tamper(svc, sql)
    assert any(expect in p for p in problems), problems


def test_audit_verify_command_exit_codes(tmp_path: Path) -> None:
    svc = _study(tmp_path)
    db = str(tmp_path / "s.sqlite")
    rc, out, _ = cli(["audit", "verify", "--db", db])
    assert rc == 0 and "intact" in out
    _tamper(svc, "UPDATE users SET active = 0 WHERE name = 'adj'")
    rc, out, _ = cli(["audit", "verify", "--db", db])
    assert rc == 3 and "users row 4 was changed" in out
    rc, out, err = cli(["audit", "export", "--db", db, "--user", "admin", "--out", str(tmp_path / "a.csv")],
                       PASSWORDS["admin"])
    assert rc == 0 and (tmp_path / "a.csv").read_text().count("user.create") == 5


@pytest.fixture
def one_case(tmp_path: Path):
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    svc = _study(tmp_path)
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=1)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "a" / "day90")
    admin = svc.login("admin", PASSWORDS["admin"])
    (code,) = svc.import_folder(admin, tmp_path / "raw")
    return svc, code, ph


def test_signed_read_is_locked_and_a_change_is_a_new_version(one_case) -> None:
    svc, code, ph = one_case
    r = svc.login("reader_a", PASSWORDS["reader_a"])
    [entry] = svc.worklist(r)
    assert entry.code == code and entry.needs_fibrosis and entry.status == "new"
    lab = ph.truth.astype(np.uint8)
    draft = svc.save_read(r, code, lab, kit.form_for("baseline"))  # no fibrosis grid on a Day-90 scan
    assert svc.worklist(r)[0].status == "in progress"
    with pytest.raises(StudyStateError, match="incomplete"):
        svc.sign_read(r, draft.id, PASSWORDS["reader_a"])
    draft = svc.save_read(r, code, lab, kit.form_for("day90"))
    assert draft.version == 1 and len(svc.my_reads(r, code)) == 1  # a draft is replaced, not versioned
    with pytest.raises(AuthenticationError):
        svc.sign_read(r, draft.id, "not-my-password")
    v1 = svc.sign_read(r, draft.id, PASSWORDS["reader_a"])
    assert v1.status == "signed" and v1.signed_at and svc.worklist(r)[0].status == "signed"
    with pytest.raises(StudyStateError, match="reason"):
        svc.save_read(r, code, lab, kit.form_for("day90"))
    with pytest.raises(StudyStateError, match="already signed"):
        svc.sign_read(r, v1.id, PASSWORDS["reader_a"])
    lab2 = lab.copy()
    lab2[(lab2 == 1) & (np.arange(lab.shape[0]) == 12)[:, None, None]] = 2
    v2 = svc.save_read(r, code, lab2, kit.form_for("day90"), reason="missed GGO in the lower lobe")
    assert v2.version == 2 and v2.supersedes_id == v1.id and v2.status == "draft"
    assert v2.endpoints["lesion_pct"] > v1.endpoints["lesion_pct"]
    svc.sign_read(r, v2.id, PASSWORDS["reader_a"])
    versions = svc.my_reads(r, code)
    assert [(v.version, v.status) for v in versions] == [(1, "signed"), (2, "signed")]
    assert versions[0].endpoints == v1.endpoints and versions[0].labels_path.is_file()  # old one kept
    # a second reader cannot see either version
    b = svc.login("reader_b", PASSWORDS["reader_b"])
    with pytest.raises(StudyPermissionError):
        svc.get_read(b, v1.id)
    assert svc.my_reads(b, code) == []
    # a third reader is refused once two have read the case
    svc.submit_read(b, code, lab, kit.form_for("day90"), PASSWORDS["reader_b"])
    admin = svc.login("admin", PASSWORDS["admin"])
    svc.add_user(admin, "reader_c", "reader", "reader-c-secret")
    c = svc.login("reader_c", "reader-c-secret")
    with pytest.raises(StudyStateError, match="two readers"):
        svc.save_read(c, code, lab, kit.form_for("day90"))
    assert svc.audit_verify().ok


def test_tampered_label_file_is_refused(one_case) -> None:
    svc, code, ph = one_case
    r = svc.login("reader_a", PASSWORDS["reader_a"])
    info = svc.save_read(r, code, ph.truth.astype(np.uint8), kit.form_for("day90"))
    info.labels_path.write_bytes(info.labels_path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(StudyError, match="checksum"):
        svc.sign_read(r, info.id, PASSWORDS["reader_a"])


def test_import_errors_name_the_problem_and_import_nothing(tmp_path: Path) -> None:
    svc = _study(tmp_path)
    admin = svc.login("admin", PASSWORDS["admin"])
    bad = tmp_path / "m.csv"
    bad.write_text("subject,folder\nS1,x\n")
    with pytest.raises(ImportDataError, match="columns subject, visit, folder"):
        svc.import_manifest(admin, bad)
    (tmp_path / "empty").mkdir()
    good = tmp_path / "raw"
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    write_synthetic_series(make_chest_phantom(kit.SHAPE, kit.SPACING).volume, good)
    m = tmp_path / "m2.csv"
    m.write_text(f"subject,visit,folder\nS1,baseline,{good}\nS1,day10,empty\n")
    with pytest.raises(ImportDataError, match="empty holds no CT"):
        svc.import_manifest(admin, m)
    m.write_text(f"subject,visit,folder\nS1,week3,{good}\n")
    with pytest.raises(ImportDataError, match="week3"):
        svc.import_manifest(admin, m)
    # all or nothing: the failed imports left neither files nor rows behind
    assert not list((svc.storage / "cases").glob("*"))
    assert svc.case_links(admin) == []
    m.write_text(f"subject,visit,folder\nS1,baseline,{good}\n")
    assert len(svc.import_manifest(admin, m)) == 1
    with pytest.raises(ImportDataError, match="imported before"):
        svc.import_manifest(admin, m)
    assert len(svc.case_links(admin)) == 1
    # Reading the unblinding key is an audited export, and the chain stays intact.
    link_reads = [r for r in svc.audit_records(admin) if r.action == "export.links"]
    assert len(link_reads) == 2 and all(r.user_name == admin.name for r in link_reads)
    assert svc.audit_verify().ok


def test_cli_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('name = "T"\nreading_mode = "sideways"\n')
    rc, out, err = cli(["study", "create", str(cfg), "--db", str(tmp_path / "x.sqlite")])
    assert rc == 2 and "reading_mode" in err and "Traceback" not in err
    cfg.write_text('name = "T"\n')
    db = str(tmp_path / "x.sqlite")
    assert cli(["study", "create", str(cfg), "--db", db])[0] == 0
    assert cli(["user", "add", "--db", db, "--name", "boss", "--role", "admin"], "boss-password\n")[0] == 0
    rc, out, err = cli(["user", "add", "--db", db, "--name", "r", "--role", "reader", "--admin", "boss"],
                       "reader-password\nwrong-password\n")
    assert rc == 2 and "wrong password" in err
    rc, out, err = cli(["user", "add", "--db", db, "--name", "r", "--role", "reader", "--admin", "boss"],
                       "reader-password\n")
    assert rc == 2 and "password on stdin" in err


def test_adjudication_by_correction(one_case, tmp_path: Path) -> None:
    svc, code, ph = one_case
    truth = ph.truth.astype(np.uint8)
    a = svc.login("reader_a", PASSWORDS["reader_a"])
    b = svc.login("reader_b", PASSWORDS["reader_b"])
    ra = svc.submit_read(a, code, truth, kit.form_for("day90"), PASSWORDS["reader_a"])
    more = truth.copy()
    more[(more == 1) & (np.arange(truth.shape[0]) >= 8)[:, None, None]] = 2
    rb = svc.submit_read(b, code, more, kit.form_for("day90", fibrosis=True), PASSWORDS["reader_b"])
    adj = svc.login("adj", PASSWORDS["adj"])
    [entry] = svc.adjudication_worklist(adj)
    assert entry.status == "pending" and len(entry.reasons) == 2  # lesion_pct and cord_like
    view = svc.adjudication_view(adj, code)
    assert {view.read_a.id, view.read_b.id} == {ra.id, rb.id}
    assert "lesion_pct" in view.differences and "fibrosis.cord_like.RLL" in view.differences
    assert svc.get_read(adj, rb.id).endpoints == rb.endpoints  # the adjudicator may open both reads
    with pytest.raises(StudyPermissionError):
        svc.adjudicate(a, code, PASSWORDS["reader_a"], "mine is right", choose=ra.id)
    with pytest.raises(StudyError, match="reason"):
        svc.adjudicate(adj, code, PASSWORDS["adj"], " ", choose=ra.id)
    with pytest.raises(StudyError, match="not one of"):
        svc.adjudicate(adj, code, PASSWORDS["adj"], "x", choose=12345)
    fixed = truth.copy()
    fixed[(fixed == 1) & (np.arange(truth.shape[0]) == 9)[:, None, None]] = 2
    final = svc.adjudicate(adj, code, PASSWORDS["adj"], "some GGO at slice 9, no fibrosis",
                           based_on=ra.id, labels=fixed)
    assert final.kind == "adjudication" and final.based_on_read_id == ra.id and final.status == "signed"
    assert ra.endpoints["lesion_pct"] < final.endpoints["lesion_pct"] < rb.endpoints["lesion_pct"]
    assert svc.adjudication_worklist(adj)[0].status == "adjudicated"
    with pytest.raises(StudyStateError, match="adjudicated"):
        svc.adjudicate(adj, code, PASSWORDS["adj"], "again", choose=ra.id)
    stat = svc.login("stat", PASSWORDS["stat"])
    res = svc.export(stat, tmp_path / "exp", dicom=False)
    assert res.problems == ["subject a has no arm in the randomization list"]
    row = res.csv_path.read_text().splitlines()[1]
    assert "corrected read" in row and f"{final.endpoints['lesion_pct']:.6f}" in row
    assert svc.audit_verify().ok


def test_worklist_orders_per_reader_and_longitudinal_mode(tmp_path: Path, raw_study: kit.RawStudy) -> None:
    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="L", reading_mode="longitudinal"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    for n in ("reader_a", "reader_b"):
        svc.add_user(admin, n, "reader", PASSWORDS[n])
    # import links only (the DICOM copy is tested elsewhere): 3 subjects x 4 visits
    svc.import_manifest(admin, raw_study.manifest)
    links = {lk["code"]: (lk["subject"], lk["visit"]) for lk in svc.case_links(admin)}
    wa = svc.worklist(svc.login("reader_a", PASSWORDS["reader_a"]))
    wb = svc.worklist(svc.login("reader_b", PASSWORDS["reader_b"]))
    assert [e.visit for e in wa] == list(kit.VISITS) * 3  # subjects in blocks, visits in time order
    assert all(links[e.code][1] == e.visit for e in wa)
    subjects_a = [links[e.code][0] for e in wa[::4]]
    assert len(set(subjects_a)) == 3
    assert {e.code for e in wa} == {e.code for e in wb} == set(links)
    assert wa == svc.worklist(svc.login("reader_a", PASSWORDS["reader_a"]))  # stable (stored seed)


def test_per_scan_worklists_differ_between_readers(tmp_path: Path) -> None:
    from readerapp.study.service import _ordered

    class C:
        def __init__(self, i: int) -> None:
            self.id, self.code = i, f"C{i:03d}"

    cases = [C(i) for i in range(40)]
    cfg = StudyConfig(name="x")
    a = [c.code for c in _ordered(cases, "seed-a", {}, cfg)]  # type: ignore[arg-type]
    b = [c.code for c in _ordered(cases, "seed-b", {}, cfg)]  # type: ignore[arg-type]
    assert sorted(a) == sorted(b) and a != b and a != sorted(a)
    # adding a case keeps the others' relative order
    a2 = [c.code for c in _ordered([*cases, C(99)], "seed-a", {}, cfg)]  # type: ignore[arg-type]
    assert [x for x in a2 if x != "C099"] == a


def test_default_database_lives_in_the_user_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from readerapp.study.db import resolve_db_url, storage_dir_for

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("READERAPP_CONFIG_DIR", str(tmp_path / "no-config"))  # no settings at all
    monkeypatch.setenv("READERAPP_SITE_CONFIG_DIR", str(tmp_path / "no-site-config"))
    for var in ("READERAPP_DATA_DIR", "READERAPP_DATABASE_URL", "READERAPP_STUDY_STORAGE"):
        monkeypatch.delenv(var, raising=False)
    url = resolve_db_url(None)
    assert url == f"sqlite:///{tmp_path / 'xdg' / 'ReaderApp' / 'study' / 'study.sqlite'}"
    assert storage_dir_for(url) == tmp_path / "xdg" / "ReaderApp" / "study" / "study_files"
    cfg = tmp_path / "c.json"
    cfg.write_text('{"name": "default"}')
    assert cli(["study", "create", str(cfg)])[0] == 0
    assert (tmp_path / "xdg" / "ReaderApp" / "study" / "study.sqlite").is_file()
    with pytest.raises(StudyError, match="READERAPP_STUDY_STORAGE"):
        storage_dir_for("postgresql+psycopg://u@h/db")
    monkeypatch.setenv("READERAPP_STUDY_STORAGE", str(tmp_path / "share"))
    assert storage_dir_for("postgresql+psycopg://u@h/db") == tmp_path / "share"


def test_cli_submits_a_workstation_read_folder_and_guards_the_link_table(one_case, tmp_path: Path) -> None:
    from readerapp.analysis import measure
    from readerapp.forms import ReadForm
    from readerapp.readfile import save_read

    svc, code, ph = one_case
    db = str(svc.db.url).removeprefix("sqlite:///")
    r = svc.login("reader_a", PASSWORDS["reader_a"])
    vol = svc.case_volume(r, code)
    lab = ph.truth.astype(np.uint8)
    folder = save_read(tmp_path / "myread", volume=vol, labels=lab,
                       form=ReadForm.from_dict(kit.form_for("day90")), endpoints=measure(vol, lab))
    rc, out, err = cli(["read", "submit", "--db", db, "--case", code, "--user", "reader_a",
                        "--labels", str(folder), "--sign"], PASSWORDS["reader_a"])
    assert rc == 0, err
    assert '"status": "signed"' in out
    rc, out, err = cli(["study", "links", "--db", db, "--user", "reader_a"], PASSWORDS["reader_a"])
    assert rc == 2 and "admin or statistician" in err and "SUBJ" not in out
    rc, out, err = cli(["study", "links", "--db", db, "--user", "stat"], PASSWORDS["stat"])
    assert rc == 0 and code in out and ",a,day90," in out


def test_migrations_match_the_models(tmp_path: Path) -> None:
    """A model change without a migration would make a new database differ from the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from readerapp.study.models import Base

    svc = StudyService(tmp_path / "m.sqlite")
    with svc.db.engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
        assert diff == []
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
    StudyService(tmp_path / "m.sqlite")  # opening again is a no-op upgrade


def test_enhanced_multiframe_ct_is_imported_deidentified(tmp_path: Path) -> None:
    import pydicom

    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    svc = _study(tmp_path)
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=5)
    ident = kit._identity(1, 0)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "S7" / "baseline", enhanced=True,
                           edit=kit._edit_wrapper(ident))
    admin = svc.login("admin", PASSWORDS["admin"])
    (code,) = svc.import_folder(admin, tmp_path / "raw")
    [f] = list((svc.storage / "cases" / code).glob("*.dcm"))
    ds = pydicom.dcmread(f)
    assert ds.NumberOfFrames == kit.SHAPE[0] and ds.PatientID == code
    text_values = str(ds).lower()
    assert not [v for v in ident.values() if v.lower() in text_values]
    r = svc.login("reader_a", PASSWORDS["reader_a"])
    info = svc.submit_read(r, code, ph.truth.astype(np.uint8), kit.form_for("baseline"), PASSWORDS["reader_a"])
    lung = int((ph.truth >= 1).sum())
    assert info.endpoints["lesion_pct"] == pytest.approx(100 * int((ph.truth >= 2).sum()) / lung)
