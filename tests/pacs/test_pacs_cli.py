"""The ``readerapp pacs`` commands against Orthanc: echo, query, retrieve + blinded import, send."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from orthanc_kit import LoadedPacs

from readerapp.cli import main

pytestmark = [pytest.mark.orthanc, pytest.mark.realdata]


def test_echo_query_retrieve_import_send(pacs_settings, pacs_with_ct: LoadedPacs, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    assert main(["pacs", "echo"]) == 0 and main(["pacs", "echo", "dimse"]) == 0
    out = capsys.readouterr().out
    assert "DICOMweb" in out and "C-ECHO" in out

    assert main(["pacs", "query", "--node", "dimse", "--patient-id", "Lung_Dx-A0001", "--json"]) == 0
    studies = json.loads(capsys.readouterr().out)
    assert [s["study_uid"] for s in studies] == [pacs_with_ct.study_uid]
    assert main(["pacs", "query", "--study", pacs_with_ct.study_uid]) == 0
    assert pacs_with_ct.series_uid in capsys.readouterr().out

    db = str(tmp_path / "study.sqlite")
    svc = StudyService(db)
    svc.create_study(StudyConfig(name="CLI"))
    svc.add_user(None, "admin", "admin", "admin-pass-1234")
    monkeypatch.setattr("sys.stdin", io.StringIO("admin-pass-1234\n"))
    rc = main(["pacs", "retrieve", "--node", "dimse", "--route", "move", "--study", pacs_with_ct.study_uid,
               "--subject", "S01", "--visit", "baseline", "--db", db, "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "64 retrieved, 0 already present, complete" in out and "imported as case" in out
    staged = pacs_settings.effective_staging_dir() / pacs_with_ct.study_uid / pacs_with_ct.series_uid
    assert not staged.exists()  # the identifiable copy is gone after the import
    admin = svc.login("admin", "admin-pass-1234")
    assert [(lk["subject"], lk["visit"]) for lk in svc.case_links(admin)] == [("S01", "baseline")]

    # a wrong administrator password stops before anything is transferred
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    rc = main(["pacs", "retrieve", "--study", pacs_with_ct.study_uid, "--subject", "S02",
               "--visit", "baseline", "--db", db, "--quiet"])
    assert rc == 2 and not staged.exists()
    capsys.readouterr()

    assert main(["pacs", "send", str(tmp_path / "none")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["pacs", "retrieve", "--node", "web", "--route", "get", "--study", "1.2.3"]) == 2
    assert "route 'get' needs a DIMSE node" in capsys.readouterr().err
