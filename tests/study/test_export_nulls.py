"""The statistician's CSV and SR for a scan whose lung is empty: empty cells with their reason in
``null_reasons``, never 0, and no percentage measurement in the SR."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import studykit as kit
from studykit import PASSWORDS

from readerapp import endpoints as catalogue
from readerapp.study.config import StudyConfig
from readerapp.study.service import StudyService


def test_zero_lung_read_exports_empty_cells_with_reasons(tmp_path: Path) -> None:
    import pydicom

    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="T", visits=("baseline", "day10"), fibrosis_visits=()))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    for name in ("reader_a", "reader_b", "stat"):
        svc.add_user(admin, name, kit.ROLES[name], PASSWORDS[name])
    ph = {v: make_chest_phantom(kit.SHAPE, kit.SPACING, seed=i) for i, v in enumerate(("baseline", "day10"))}
    lines = ["subject,visit,folder"]
    for visit, p in ph.items():
        write_synthetic_series(p.volume, tmp_path / visit)
        lines.append(f"S1,{visit},{tmp_path / visit}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    svc.import_manifest(admin, tmp_path / "m.csv")
    codes = {lk["visit"]: lk["code"] for lk in svc.case_links(admin)}
    for reader in ("reader_a", "reader_b"):
        actor = svc.login(reader, PASSWORDS[reader])
        for visit, p in ph.items():
            # at day 10 both readers leave the lung empty (a reader's extreme, but possible)
            labels = p.truth.astype(np.uint8) if visit == "baseline" else np.zeros(kit.SHAPE, np.uint8)
            svc.submit_read(actor, codes[visit], labels, kit.form_for(visit), PASSWORDS[reader])
    stat = svc.login("stat", PASSWORDS["stat"])
    res = svc.export(stat, tmp_path / "out")
    rows = {r["visit"]: r for r in csv.DictReader(res.csv_path.open(encoding="utf-8"))}
    base, day10 = rows["baseline"], rows["day10"]
    assert day10["status"] == base["status"] == "concordant"
    assert float(base["lesion_pct"]) > 0 and base["null_reasons"] == ""
    assert day10["lung_volume_ml"] == "0.000000"  # a zero volume is a value
    for k in ("lesion_pct", "ggo_pct", "consolidation_pct", "mean_lung_hu"):
        for col in (k, f"{k}.reader1", f"{k}.reader2", f"{k}.change"):
            assert day10[col] == "", col  # never 0
        assert f"{k}: " in day10["null_reasons"]
    assert catalogue.ZERO_LUNG_REASON in day10["null_reasons"]
    assert day10["lung_volume_ml.change"] != ""
    # the SR of the empty-lung read carries the volumes only
    srs = sorted((res.folder / "dicom" / "S1" / "day10").glob("SR_*.dcm"))
    assert srs, res.problems
    for path in srs:
        ds = pydicom.dcmread(path)
        units = []
        stack = [ds]
        while stack:
            item = stack.pop()
            if getattr(item, "ValueType", "") == "NUM":
                units.append(item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue)
            stack.extend(getattr(item, "ContentSequence", []))
        assert units and set(units) == {"ml"}
