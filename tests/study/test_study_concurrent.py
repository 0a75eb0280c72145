"""The workflow with the two readers writing at the same time from separate connections, on a real
PostgreSQL server (a throwaway cluster, see conftest.py) and on an SQLite file; nothing may be
lost, the audit chain must not fork, and the export must still be exact."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import studykit as kit
from sqlalchemy import func, select, text
from studykit import PASSWORDS, ROLES

from readerapp.study.config import StudyConfig
from readerapp.study.models import AuditLog, Read
from readerapp.study.service import StudyService

pytestmark = pytest.mark.slow


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "concurrent.sqlite")
    request.applymarker(pytest.mark.postgres)
    return request.getfixturevalue("pg_url")


def test_workflow_with_concurrent_readers(db_url: str, raw_study: kit.RawStudy, tmp_path: Path) -> None:
    pg_url = db_url
    storage = tmp_path / "storage"
    svc = StudyService(pg_url, storage)
    assert svc.db.engine.dialect.name == ("sqlite" if db_url.endswith(".sqlite") else "postgresql")
    svc.create_study(StudyConfig(name="PG trial"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    for name, role in ROLES.items():
        if name != "admin":
            svc.add_user(admin, name, role, PASSWORDS[name])
    svc.import_manifest(admin, raw_study.manifest)
    by_code = {lk["code"]: (lk["subject"], lk["visit"]) for lk in svc.case_links(admin)}
    wf = kit.Workflow(db=pg_url, storage=storage, raw=raw_study, codes={v: k for k, v in by_code.items()},
                      labels={}, read_ids={}, export_dir=tmp_path / "export")
    wf.discordant_code = wf.codes[kit.DISCORDANT]

    # two workstations: separate service objects, separate connection pools, started together
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(reader: str) -> None:
        try:
            mine = StudyService(pg_url, storage)
            barrier.wait(timeout=30)
            kit.submit_all(mine, wf, reader, by_code, same_order=True)  # same case, same time
            mine.db.dispose()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in ("reader_a", "reader_b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    with svc.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Read).where(Read.status == "signed")) == 24
        seqs = list(s.scalars(select(AuditLog.seq).order_by(AuditLog.seq)))
    assert seqs == list(range(1, len(seqs) + 1))
    for reader in ("reader_a", "reader_b"):
        entries = svc.worklist(svc.login(reader, PASSWORDS[reader]))
        assert len(entries) == 12 and {e.status for e in entries} == {"signed"}
    assert svc.audit_verify().ok

    adj = svc.login("adj", PASSWORDS["adj"])
    assert [e.code for e in svc.adjudication_worklist(adj)] == [wf.discordant_code]
    svc.adjudicate(adj, wf.discordant_code, PASSWORDS["adj"], "reader A's extent is right",
                   choose=wf.read_ids[(wf.discordant_code, "reader_a")])
    stat = svc.login("stat", PASSWORDS["stat"])
    rand = tmp_path / "rand.csv"
    rand.write_text("subject,arm\n" + "".join(f"{kit.subject_name(i)},MSC\n" for i in range(3)))
    res = svc.export(stat, wf.export_dir, rand, dicom=False)
    assert res.problems == []
    assert kit.check_export(wf, res.csv_path) == 63
    assert svc.audit_verify().ok

    with svc.db.engine.begin() as c:
        c.execute(text("UPDATE reads SET endpoints_json = replace(endpoints_json, '\"lesion_pct\":', '\"lesion_pct\": 1') WHERE id = 3"))
    problems = svc.audit_verify().problems
    assert any("reads row 3 was changed outside the program" in p for p in problems), problems
    svc.db.dispose()
