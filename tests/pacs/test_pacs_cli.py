"""The ``readerapp pacs`` commands against Orthanc, as a site runs them: echo, query, retrieve into
the study the settings name (de-identified on arrival), two blinded reads, adjudication, and
``send-read --case`` putting the final read back next to the ORIGINAL series."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from orthanc_kit import LoadedPacs, reader_labels

from readerapp import __version__
from readerapp.cli import main

pytestmark = [
    pytest.mark.orthanc, pytest.mark.realdata,
    pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent:UserWarning"),
]

PW = {"admin": "admin-pass-1234", "reader_a": "reader-a-pass-1", "reader_b": "reader-b-pass-1",
      "adj": "adjudicator-pass-1", "stat": "statistician-pass-1"}
ROLES = {"admin": "admin", "reader_a": "reader", "reader_b": "reader", "adj": "adjudicator",
         "stat": "statistician"}
LOBES = ("RUL", "RML", "RLL", "LUL", "LLL")


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str],
         stdin: str = "") -> tuple[int, str, str]:
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_echo_query_retrieve_read_and_send_the_final_read_back(
        pacs_settings, pacs_with_ct: LoadedPacs, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("highdicom")
    import pydicom

    from readerapp.pacs import open_client
    from readerapp.study.service import StudyService

    def run(args: list[str], stdin: str = "") -> tuple[int, str, str]:
        return _run(monkeypatch, capsys, args, stdin)

    rc, out, _ = run(["pacs", "echo"])
    assert rc == 0 and "DICOMweb" in out
    rc, out, _ = run(["pacs", "echo", "dimse"])
    assert rc == 0 and "C-ECHO" in out
    rc, out, _ = run(["pacs", "query", "--node", "dimse", "--patient-id", "Lung_Dx-A0001", "--json"])
    assert rc == 0 and [s["study_uid"] for s in json.loads(out)] == [pacs_with_ct.study_uid]
    rc, out, _ = run(["pacs", "query", "--study", pacs_with_ct.study_uid])
    assert rc == 0 and pacs_with_ct.series_uid in out

    # the site's study database is set once in the settings; no command below names it
    monkeypatch.delenv("READERAPP_DATABASE_URL", raising=False)
    site_db = tmp_path / "site" / "trial.sqlite"
    site_url = "sqlite:///" + site_db.as_posix()
    assert run(["settings", "set", "database_url", site_url])[0] == 0
    cfg = tmp_path / "study.json"
    cfg.write_text(json.dumps({"name": "site CLI", "visits": ["baseline", "day90"],
                               "fibrosis_visits": ["day90"]}), encoding="utf-8")
    assert run(["study", "create", str(cfg)])[0] == 0
    assert site_db.is_file()
    for name, role in ROLES.items():
        stdin = PW[name] + "\n" + ("" if name == "admin" else PW["admin"] + "\n")
        rc, _, err = run(["user", "add", "--name", name, "--role", role], stdin)
        assert rc == 0, err

    # retrieve by C-MOVE and import straight into that study, de-identified on arrival
    staging = pacs_settings.effective_staging_dir()
    rc, out, err = run(["pacs", "retrieve", "--node", "dimse", "--route", "move", "--study", pacs_with_ct.study_uid,
                        "--subject", "S01", "--visit", "baseline", "--quiet"], PW["admin"] + "\n")
    assert rc == 0, err
    assert "64 retrieved, 0 already present, complete" in out and "imported as case" in out
    code = out.split("imported as case")[1].split()[0]
    assert not list(staging.rglob("*.dcm")), "the identifiable staged copy must be deleted after import"
    assert not (staging / pacs_with_ct.study_uid / pacs_with_ct.series_uid).exists()
    assert not (Path(os.environ["READERAPP_DATA_DIR"]) / "study").exists()  # not the local default
    svc = StudyService(site_url)
    admin = svc.login("admin", PW["admin"])
    [orig] = svc.case_originals(admin)
    assert (orig.code, orig.subject, orig.visit) == (code, "S01", "baseline")
    assert (orig.original_study_uid, orig.original_series_uid) == (pacs_with_ct.study_uid, pacs_with_ct.series_uid)
    assert orig.final_reads == ()

    # a wrong administrator password stops before anything is transferred
    rc, _, err = run(["pacs", "retrieve", "--study", pacs_with_ct.study_uid, "--subject", "S02",
                      "--visit", "baseline", "--quiet"], "wrong\n")
    assert rc == 2 and "wrong password" in err and not list(staging.rglob("*.dcm"))

    # two blinded reads that disagree; the adjudicator picks reader A's
    form = {"severity": dict.fromkeys(LOBES, 1), "fibrosis": None, "comment": ""}
    reads = {}
    for name, extra in (("reader_a", False), ("reader_b", True)):
        actor = svc.login(name, PW[name])
        vol = svc.case_volume(actor, code)
        reads[name] = svc.submit_read(actor, code, reader_labels(vol.hu, extra=extra), form, PW[name])
    adj = svc.login("adj", PW["adj"])
    assert [e.code for e in svc.adjudication_worklist(adj)] == [code]
    final = svc.adjudicate(adj, code, PW["adj"], "reader B marked atelectasis as GGO", choose=reads["reader_a"].id)
    assert final.id == reads["reader_a"].id

    # a reader is refused, and so is a read that is not the final one
    db = site_url
    rc, _, err = run(["pacs", "send-read", "--case", code, "--db", db, "--user", "reader_a", "--quiet"],
                     PW["reader_a"] + "\n")
    assert rc == 2 and "admin or statistician" in err
    rc, _, err = run(["pacs", "send-read", "--case", code, "--db", db, "--user", "stat",
                      "--read-id", str(reads["reader_b"].id), "--quiet"], PW["stat"] + "\n")
    assert rc == 2 and "not a final read" in err

    # the statistician sends the final read back by STOW-RS, against the ORIGINAL series
    out_dir = tmp_path / "sent"
    rc, out, err = run(["pacs", "send-read", "--case", code, "--db", db, "--user", "stat", "--node", "web",
                        "--out", str(out_dir), "--quiet"], PW["stat"] + "\n")
    assert rc == 0, err
    assert "2 object(s)" in out and pacs_with_ct.series_uid in out
    assert not list(staging.rglob("*.dcm"))  # the re-retrieved original is gone again
    sent = {pydicom.dcmread(p).Modality: pydicom.dcmread(p) for p in sorted(out_dir.glob("*.dcm"))}
    assert set(sent) == {"SEG", "SR"}

    web = open_client("web", pacs_settings)
    try:
        series_in_pacs = {s.series_uid for s in web.find_series(pacs_with_ct.study_uid, modality="")}
        for modality, mine in sent.items():
            assert mine.SeriesInstanceUID in series_in_pacs
            r = web.retrieve_series(pacs_with_ct.study_uid, mine.SeriesInstanceUID, tmp_path / "back")
            [back] = [pydicom.dcmread(f) for f in r.folder.glob("*.dcm")]
            assert back.SOPInstanceUID == mine.SOPInstanceUID and back.Modality == modality
            assert back.SoftwareVersions == __version__
            assert back.StudyInstanceUID == pacs_with_ct.study_uid
            if modality == "SEG":
                assert back.ReferencedSeriesSequence[0].SeriesInstanceUID == pacs_with_ct.series_uid
                refs = {str(i.ReferencedSOPInstanceUID) for i in back.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
                assert refs == set(pacs_with_ct.sop_uids)  # the PACS's own instances
            else:
                evidence = {str(ser.SeriesInstanceUID) for st in back.CurrentRequestedProcedureEvidenceSequence
                            for ser in st.ReferencedSeriesSequence}
                assert pacs_with_ct.series_uid in evidence
                assert sent["SEG"].SeriesInstanceUID in evidence
        assert len(web.find_instances(pacs_with_ct.study_uid, pacs_with_ct.series_uid)) == 64
    finally:
        web.close()

    # audited as an export, and the trail is intact
    [rec] = [r for r in svc.audit_records(admin) if r.action == "export.pacs"]
    logged = json.loads(rec.new_json)
    assert rec.user_name == "stat" and rec.entity_id == code and logged["node"] == "web"
    assert logged["read_ids"] == [final.id] and logged["referenced_series_uid"] == pacs_with_ct.series_uid
    assert f"SEG:{sent['SEG'].SOPInstanceUID}" in logged["objects"]
    rc, out, _ = run(["audit", "verify"])
    assert rc == 0 and "intact" in out

    rc, _, err = run(["pacs", "send", str(tmp_path / "none")])
    assert rc == 2 and "no such file or folder" in err
    rc, _, err = run(["pacs", "retrieve", "--node", "web", "--route", "get", "--study", "1.2.3"])
    assert rc == 2 and "route 'get' needs a DIMSE node" in err
    rc, _, err = run(["pacs", "send-read", "--case", code, "--study", "1.2.3", "--user", "stat"])
    assert rc == 2 and "give neither READ nor --study/--series" in err
