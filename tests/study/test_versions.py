"""Every output carries the program's version (issue 5, item 5): the measurement JSON, a saved
read, the endpoint CSV, the DICOM SEG and SR, the case link CSV and the audit export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import studykit as kit
from studykit import PASSWORDS, cli

from readerapp import __version__
from readerapp.study.config import StudyConfig
from readerapp.study.service import StudyService


def test_every_output_names_the_program_version(tmp_path: Path) -> None:
    pytest.importorskip("highdicom")
    import pydicom

    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.io.labelmap import write_labelmap
    from readerapp.phantom import make_chest_phantom

    assert __version__ and __version__ != "0"
    db = tmp_path / "s.sqlite"
    svc = StudyService(db)
    svc.create_study(StudyConfig(name="versions"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    for name in ("reader_a", "reader_b", "stat"):
        svc.add_user(admin, name, kit.ROLES[name], PASSWORDS[name])
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=3)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "s1" / "baseline")
    (code,) = svc.import_folder(admin, tmp_path / "raw")
    truth = ph.truth.astype(np.uint8)
    reads = [svc.submit_read(svc.login(r, PASSWORDS[r]), code, truth, kit.form_for("baseline"), PASSWORDS[r])
             for r in ("reader_a", "reader_b")]

    # a saved read (read.json) and the measurement JSON of the command line
    meta = json.loads((reads[0].folder / "read.json").read_text(encoding="utf-8"))
    assert meta["software_version"] == __version__
    labels = tmp_path / "labels.nii.gz"
    write_labelmap(labels, truth, ph.volume)
    out_json = tmp_path / "m.json"
    rc, _, err = cli(["measure", str(tmp_path / "raw" / "s1" / "baseline"), "--labels", str(labels),
                      "--json", str(out_json)])
    assert rc == 0, err
    assert json.loads(out_json.read_text())["software_version"] == __version__

    # the statistician's export: CSV column, SEG and SR of both concordant reads
    stat = svc.login("stat", PASSWORDS["stat"])
    res = svc.export(stat, tmp_path / "export")
    [row] = list(csv.DictReader(res.csv_path.open(encoding="utf-8")))
    assert row["status"] == "concordant" and row["software_version"] == __version__
    assert len(res.dicom_files) == 4
    for f in res.dicom_files:
        ds = pydicom.dcmread(f)
        assert ds.Modality in ("SEG", "SR") and ds.SoftwareVersions == __version__, f.name

    # the case link table and the audit trail, as written by the command line
    rc, _, err = cli(["study", "links", "--db", str(db), "--user", "stat", "--out", str(tmp_path / "l.csv")],
                     PASSWORDS["stat"])
    assert rc == 0, err
    [link] = list(csv.DictReader((tmp_path / "l.csv").open(encoding="utf-8")))
    assert link["code"] == code and link["software_version"] == __version__
    rc, _, err = cli(["audit", "export", "--db", str(db), "--user", "admin", "--out", str(tmp_path / "a.csv")],
                     PASSWORDS["admin"])
    assert rc == 0, err
    audit_rows = list(csv.DictReader((tmp_path / "a.csv").open(encoding="utf-8")))
    assert len(audit_rows) > 5 and {r["export_software_version"] for r in audit_rows} == {__version__}
    assert svc.audit_verify().ok
