"""The whole blinded double-reading workflow on SQLite, headless, from the command line and the
service API: import 3 subjects x 4 visits, two readers read every scan, one discordant scan is
adjudicated, and the export's changes from baseline are checked to the last printed digit."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest
import studykit as kit
from studykit import PASSWORDS, ROLES, cli

pytestmark = pytest.mark.slow


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory, raw_study: kit.RawStudy) -> kit.Workflow:
    pytest.importorskip("highdicom")
    from readerapp.io.labelmap import write_labelmap
    from readerapp.study.service import StudyService

    root = tmp_path_factory.mktemp("study")
    raw = raw_study
    db = str(root / "db" / "trial.sqlite")
    cfg = root / "study.toml"
    cfg.write_text(kit.CONFIG_TOML, encoding="utf-8")
    logs = _Collect()
    rootlog = logging.getLogger()
    old_level = rootlog.level
    rootlog.addHandler(logs)
    rootlog.setLevel(logging.DEBUG)
    try:
        assert cli(["study", "create", str(cfg), "--db", db])[0] == 0
        for name, role in ROLES.items():
            stdin = PASSWORDS[name] + "\n" + ("" if name == "admin" else PASSWORDS["admin"] + "\n")
            rc, out, err = cli(["user", "add", "--db", db, "--name", name, "--role", role], stdin)
            assert rc == 0, err
        rc, out, err = cli(["study", "import", "--db", db, "--manifest", str(raw.manifest)], PASSWORDS["admin"])
        assert rc == 0, err

        svc = StudyService(db)
        admin = svc.login("admin", PASSWORDS["admin"])
        by_code = {lk["code"]: (lk["subject"], lk["visit"]) for lk in svc.case_links(admin)}
        wf = kit.Workflow(db=db, storage=svc.storage, raw=raw,
                          codes={v: k for k, v in by_code.items()}, labels={}, read_ids={},
                          export_dir=root / "export", service=svc)
        wf.discordant_code = wf.codes[kit.DISCORDANT]

        # reader A works from the command line: worklist, then a label file + form per case
        rc, out, err = cli(["worklist", "--db", db, "--user", "reader_a", "--json"], PASSWORDS["reader_a"])
        assert rc == 0, err
        wf.reader_visible.append(out)
        entries = json.loads(out)
        assert [e["position"] for e in entries] == list(range(1, 13))
        assert all(e["status"] == "new" and "visit" not in e for e in entries)
        work = root / "reader_a_work"
        work.mkdir()
        for e in entries:
            subj, visit = by_code[e["code"]]
            scan = raw.scans[(subj, visit)]
            lab = kit.reader_labels(scan, "reader_a")
            vol = svc.case_volume(svc.login("reader_a", PASSWORDS["reader_a"]), e["code"])
            lpath = work / f"{e['position']}.nii.gz"
            write_labelmap(lpath, lab, vol)
            fpath = kit.write_form(work / f"{e['position']}.json", kit.form_for(visit))
            rc, out, err = cli(["read", "submit", "--db", db, "--case", e["code"], "--user", "reader_a",
                                "--labels", str(lpath), "--form", str(fpath), "--sign"], PASSWORDS["reader_a"])
            assert rc == 0, err
            wf.reader_visible.append(out)
            res = json.loads(out)
            assert res["status"] == "signed" and res["version"] == 1
            wf.labels[(e["code"], "reader_a")] = lab
            wf.read_ids[(e["code"], "reader_a")] = res["read_id"]

        # reader B works through the service API (as the workstation does)
        kit.submit_all(svc, wf, "reader_b", by_code)

        # the adjudicator sees exactly the discordant case and picks reader A's read
        rc, out, err = cli(["worklist", "--db", db, "--user", "adj", "--json"], PASSWORDS["adj"])
        assert rc == 0, err
        pending = json.loads(out)
        assert [p["code"] for p in pending] == [wf.discordant_code]
        assert "lesion_pct" in pending[0]["reasons"][0]
        rc, out, err = cli(["adjudicate", "--db", db, "--case", wf.discordant_code, "--user", "adj", "--show"],
                           PASSWORDS["adj"])
        assert rc == 0, err
        shown = json.loads(out)
        assert "lesion_pct" in shown["differences"]
        choose = wf.read_ids[(wf.discordant_code, "reader_a")]
        rc, out, err = cli(["adjudicate", "--db", db, "--case", wf.discordant_code, "--user", "adj",
                            "--choose", str(choose), "--reason", "reader B included atelectasis as GGO"],
                           PASSWORDS["adj"])
        assert rc == 0, err
        assert json.loads(out)["final_read_id"] == choose

        rand = root / "randomization.csv"
        rand.write_text("subject,arm\n" + "".join(f"{kit.subject_name(i)},{'MSC' if i != 1 else 'placebo'}\n"
                                                   for i in range(3)), encoding="utf-8")
        # DICOM SEG/SR for the adjudicated scan and one concordant scan (all of them take ~1 s each)
        wf.dicom_codes = [wf.discordant_code, wf.codes[(kit.subject_name(2), "day90")]]
        rc, out, err = cli(["export", "--db", db, "--user", "stat", "--randomization", str(rand),
                            "--out", str(wf.export_dir), "--dicom-case", wf.dicom_codes[0],
                            "--dicom-case", wf.dicom_codes[1]], PASSWORDS["stat"])
        assert rc == 0, err
    finally:
        rootlog.removeHandler(logs)
        rootlog.setLevel(old_level)
    wf.reader_visible += logs.lines
    return wf


def test_export_changes_from_baseline_to_the_last_digit(workflow: kit.Workflow) -> None:
    n = kit.check_export(workflow, workflow.export_dir / "endpoints.csv")
    assert n == 3 * 3 * 7  # 3 subjects x 3 follow-ups x 7 endpoints recomputed independently
    text = (workflow.export_dir / "endpoints.csv").read_text()
    assert "placebo" in text and "MSC" in text


def test_export_writes_seg_and_sr_referencing_the_deidentified_series(workflow: kit.Workflow) -> None:
    import pydicom

    svc = workflow.service
    code = workflow.discordant_code
    folder = workflow.export_dir / "dicom" / kit.DISCORDANT[0] / kit.DISCORDANT[1]
    files = sorted(folder.glob("*.dcm"))
    assert [f.name.split("_")[0] for f in files] == ["SEG", "SR"]  # adjudicated: one final read
    seg = pydicom.dcmread(files[0])
    sr = pydicom.dcmread(files[1])
    assert seg.Modality == "SEG" and len(seg.SegmentSequence) == 3
    with svc.db.transaction() as s:
        from sqlalchemy import select

        from readerapp.study.models import Case

        case = s.scalar(select(Case).where(Case.code == code))
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == case.series_uid
    assert seg.PatientID == code
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    # a concordant scan: both reads behind the mean are exported
    other = workflow.export_dir / "dicom" / kit.subject_name(2) / "day90"
    assert len(list(other.glob("SEG_*.dcm"))) == 2 and len(list(other.glob("SR_*.dcm"))) == 2
    assert len(list((workflow.export_dir / "dicom").rglob("*.dcm"))) == 6


def _walk_values(ds, out: list[str]) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _walk_values(item, out)
        elif elem.tag != 0x7FE00010 and elem.VR not in ("OB", "OW", "OF", "OD", "UN"):
            out.append(f"{elem.keyword}={elem.value}")


def _leaks(forbidden: set[str], text: str) -> list[str]:
    """Values found in ``text``: substrings, except that numbers and UIDs count only as whole
    tokens (a date's digits inside a random new UID or a float's decimals are not a leak)."""
    import re

    tokens = set(re.findall(r"[0-9.]+", text))
    found = []
    for v in forbidden:
        v = v.lower()
        if re.fullmatch(r"[0-9.]+", v):
            if v in tokens:
                found.append(v)
        elif v in text:
            found.append(v)
    return sorted(found)


def test_blinding_nothing_identifying_reaches_a_reader(workflow: kit.Workflow) -> None:
    import pydicom

    svc = workflow.service
    haystack = list(workflow.reader_visible)
    haystack += list(workflow.codes.values())
    n_files = 0
    for f in sorted((workflow.storage / "cases").rglob("*")):
        if f.is_file():
            ds = pydicom.dcmread(f)
            vals: list[str] = []
            _walk_values(ds.file_meta, vals)
            _walk_values(ds, vals)
            haystack.append("\n".join(vals))
            haystack.append(f.name)
            n_files += 1
    assert n_files == 12 * kit.SHAPE[0]
    for f in sorted((workflow.storage / "reads").rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            if f.name.endswith(".gz"):
                data = gzip.decompress(data)
            haystack.append(data.decode("latin-1"))
            haystack.append(str(f.relative_to(workflow.storage)))
    for reader in ("reader_a", "reader_b"):
        actor = svc.login(reader, PASSWORDS[reader])
        haystack.append(repr(svc.worklist(actor)))
        for code in workflow.codes.values():
            haystack.append(repr(svc.my_reads(actor, code)))
            haystack.append(str(svc.case_folder(actor, code)))
    text = "\n".join(haystack).lower()
    forbidden = set(workflow.raw.identifying) | set(kit.VISITS)
    assert len(forbidden) > 12 * 4
    # the original study and series UIDs kept for sending results back to the PACS are searched
    # for too: they are in the restricted link table only
    originals = svc.case_originals(svc.login("admin", PASSWORDS["admin"]))
    assert len(originals) == 12
    for o in originals:
        scan = workflow.raw.scans[(o.subject, o.visit)]
        assert {o.original_study_uid, o.original_series_uid} <= scan.uids
        assert {o.original_study_uid, o.original_series_uid} <= forbidden
        assert o.original_study_uid not in text and o.original_series_uid not in text
        assert len(o.final_reads) == (1 if o.code == workflow.discordant_code else 2)
    assert _leaks(forbidden, text) == []
    # and the search is not vacuous: the raw files do hold those values
    raw_text = "\n".join(str(v) for s in workflow.raw.scans.values() for v in s.identity.values())
    assert len(_leaks(forbidden, raw_text.lower())) > 12


def test_reader_cannot_open_another_readers_read_or_export(workflow: kit.Workflow, tmp_path: Path) -> None:
    from readerapp.study.errors import StudyPermissionError

    svc = workflow.service
    a = svc.login("reader_a", PASSWORDS["reader_a"])
    code = next(iter(workflow.codes.values()))
    own = svc.get_read(a, workflow.read_ids[(code, "reader_a")])
    assert own.case_code == code
    with pytest.raises(PermissionError):
        svc.get_read(a, workflow.read_ids[(code, "reader_b")])
    with pytest.raises(StudyPermissionError):
        svc.export(a, tmp_path / "x")
    with pytest.raises(StudyPermissionError):
        svc.case_links(a)
    with pytest.raises(StudyPermissionError):
        svc.audit_records(a)
    with pytest.raises(StudyPermissionError):
        svc.adjudication_view(a, workflow.discordant_code)
    adj = svc.login("adj", PASSWORDS["adj"])
    for who in (a, adj):  # the original UIDs and the way back to the PACS are not theirs
        with pytest.raises(StudyPermissionError):
            svc.case_originals(who)
        with pytest.raises(StudyPermissionError):
            svc.case_original(who, code)
        with pytest.raises(StudyPermissionError):
            svc.record_pacs_export(who, code, "pacs", [], [], "1.2.3")
    rc, out, err = cli(["export", "--db", workflow.db, "--user", "reader_a", "--out", str(tmp_path / "y")],
                       PASSWORDS["reader_a"])
    assert rc == 2 and "statistician" in err and not (tmp_path / "y").exists()
    # the adjudicator may not open reads of a concordant case
    concordant = next(c for c in workflow.codes.values() if c != workflow.discordant_code)
    with pytest.raises(StudyPermissionError):
        svc.get_read(adj, workflow.read_ids[(concordant, "reader_a")])


def test_audit_trail_of_the_workflow_is_intact_and_complete(workflow: kit.Workflow) -> None:
    rc, out, err = cli(["audit", "verify", "--db", workflow.db])
    assert rc == 0, out
    svc = workflow.service
    recs = svc.audit_records(svc.login("admin", PASSWORDS["admin"]))
    actions = [r.action for r in recs]
    assert actions.count("read.sign") == 24
    assert actions.count("case.import") == 12
    assert actions.count("adjudication.sign") == 1
    assert "export" in actions and "study.create" in actions
    exp = next(r for r in recs if r.action == "export")
    assert exp.user_name == "stat" and "endpoints.csv" in exp.new_json
