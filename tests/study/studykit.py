"""Synthetic study data for the study tests: subjects and visits as DICOM with known answers.

Every scan is a small chest phantom written as DICOM with distinctive identifying headers (names,
IDs, dates, institution, a private tag) that the blinding test hunts for. Reader label maps are the
phantom's truth plus visit-dependent ground glass, so changes from baseline are non-zero and every
endpoint can be recomputed exactly from the label map and the HU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

VISITS = ("baseline", "day10", "day28", "day90")
SHAPE = (24, 64, 64)
SPACING = (5.0, 5.0, 10.0)
PASSWORDS = {
    "admin": "admin-secret-1",
    "reader_a": "reader-a-secret",
    "reader_b": "reader-b-secret",
    "adj": "adjudicator-secret",
    "stat": "statistician-secret",
}
ROLES = {"admin": "admin", "reader_a": "reader", "reader_b": "reader", "adj": "adjudicator",
         "stat": "statistician"}
CONFIG_TOML = """\
name = "Synthetic MSC trial"
visits = ["baseline", "day10", "day28", "day90"]
fibrosis_visits = ["day90"]
reading_mode = "per_scan"
combine = "mean"

[discordance]
lesion_pct_points = 5.0
fibrosis_any_feature = true
"""


def subject_name(i: int) -> str:
    return f"SUBJ-{i + 1:03d}-QX"


@dataclass
class Scan:
    subject: str
    visit: str
    hu: np.ndarray
    truth: np.ndarray
    identity: dict[str, str]
    uids: set[str]


@dataclass
class RawStudy:
    manifest: Path
    scans: dict[tuple[str, str], Scan]
    #: Every identifying value written into the headers (and the subject labels).
    identifying: set[str] = field(default_factory=set)
    voxel_ml: float = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0


def _identity(si: int, vi: int) -> dict[str, str]:
    day = [0, 10, 28, 90][vi]
    date = f"202003{14 + day % 17:02d}" if day < 17 else f"2020{4 + day // 30:02d}{(day % 27) + 1:02d}"
    return {
        "PatientName": f"Zyxwort^Hermione^{chr(65 + si)}",
        "PatientID": f"MRN77{si:02d}413",
        "PatientBirthDate": f"19{51 + si}0612",
        "OtherPatientIDs": f"ALT-{si}-88123",
        "StudyDate": date,
        "SeriesDate": date,
        "AcquisitionDate": date,
        "ContentDate": date,
        "StudyTime": f"1{si}3{vi}17",
        "InstitutionName": "Jinyintan Hospital Wuhan Test Ward",
        "InstitutionAddress": "1 Yintan Road, Wuhan",
        "ReferringPhysicianName": "Quillfeather^Doctor",
        "AccessionNumber": f"ACCX{si}{vi}9931",
        "StationName": "CTSTATION-7Q",
        "StudyID": f"STU{si}{vi}55",
        "StudyDescription": f"Chest CT {VISITS[vi]}",
        "SeriesDescription": f"Lung {VISITS[vi]} subject {subject_name(si)}",
    }


def build_raw_study(root: Path, n_subjects: int = 3) -> RawStudy:
    """Write n_subjects x 4 visits as DICOM under ``root/raw`` and a manifest CSV."""
    import pydicom

    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    scans: dict[tuple[str, str], Scan] = {}
    identifying: set[str] = set()
    lines = ["subject,visit,folder"]
    for si in range(n_subjects):
        for vi, visit in enumerate(VISITS):
            ph = make_chest_phantom(SHAPE, SPACING, seed=100 * si + vi)
            ident = _identity(si, vi)

            folder = root / "raw" / f"s{si}" / f"v{vi}"
            files = write_synthetic_series(ph.volume, folder, edit=_edit_wrapper(ident))
            uids: set[str] = set()
            for f in files:
                ds = pydicom.dcmread(f, stop_before_pixels=True)
                uids |= {str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID),
                         str(ds.FrameOfReferenceUID)}
            sname = subject_name(si)
            scans[(sname, visit)] = Scan(sname, visit, ph.volume.hu.copy(), ph.truth.copy(), ident, uids)
            identifying |= set(ident.values()) | uids | {sname, "Zyxwort private copy"}
            identifying |= {ident["PatientName"].replace("^", " "), ident["PatientName"].split("^")[0]}
            lines.append(f"{sname},{visit},raw/s{si}/v{vi}")
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return RawStudy(manifest, scans, identifying)


def _edit_wrapper(ident: dict[str, str]):
    def edit(_i: int, ds: Any) -> None:
        for k, v in ident.items():
            setattr(ds, k, v)
        ds.add_new(0x00090010, "LO", "ZYXWORT PRIVATE")
        ds.add_new(0x00091010, "LO", "Zyxwort private copy")

    return edit


# --- reads with known answers -------------------------------------------------------------
def reader_labels(scan: Scan, reader: str, *, big_extra: bool = False) -> np.ndarray:
    """Truth plus visit-dependent GGO (shared by both readers) plus a small reader-B tweak;
    ``big_extra`` makes reader B mark far more GGO (a discordant read)."""
    lab = scan.truth.astype(np.uint8).copy()
    vi = VISITS.index(scan.visit)
    slab = np.zeros(lab.shape, bool)
    slab[3 : 3 + 2 * vi] = True
    lab[(lab == 1) & slab] = 2
    if reader == "reader_b":
        tweak = np.zeros(lab.shape, bool)
        tweak[20, :, : lab.shape[2] // 2] = True
        lab[(lab == 1) & tweak] = 3
        if big_extra:
            extra = np.zeros(lab.shape, bool)
            extra[10:18] = True
            lab[(lab == 1) & extra] = 2
    return lab


def form_for(visit: str, severity: int = 2, fibrosis: bool = False) -> dict[str, Any]:
    lobes = ("RUL", "RML", "RLL", "LUL", "LLL")
    form: dict[str, Any] = {"severity": dict.fromkeys(lobes, severity), "fibrosis": None, "comment": ""}
    if visit == "day90":
        feats = ("cord_like", "honeycombing", "septal_thickening", "intralobular_thickening",
                 "pleural_thickening")
        form["fibrosis"] = {f: {lo: (fibrosis and f == "cord_like" and lo == "RLL") for lo in lobes}
                            for f in feats}
    return form


def expected_endpoints(hu: np.ndarray, lab: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """PROTOCOL.md's endpoints recomputed directly from a label map and the HU."""
    lung = lab >= 1
    lesion = lab >= 2
    n_lung, n_lesion = int(lung.sum()), int(lesion.sum())
    n_ggo, n_cons = int((lab == 2).sum()), int((lab == 3).sum())
    hu_lesion = hu[lesion].astype(np.int64)
    return {
        "lung_volume_ml": n_lung * voxel_ml,
        "lesion_volume_ml": n_lesion * voxel_ml,
        "lesion_pct": 100.0 * n_lesion / n_lung,
        "ggo_pct": 100.0 * n_ggo / n_lung,
        "consolidation_pct": 100.0 * n_cons / n_lung,
        "lesion_mass_g": float(((hu_lesion + 1000) / 1000.0).sum() * voxel_ml),
        "mean_lung_hu": float(hu[lung].astype(np.int64).sum() / n_lung),
    }


def write_form(path: Path, form: dict[str, Any]) -> Path:
    path.write_text(json.dumps(form), encoding="utf-8")
    return path


# --- running the workflow --------------------------------------------------------------------
DISCORDANT = ("SUBJ-001-QX", "day28")


def cli(args: list[str], stdin_text: str = "") -> tuple[int, str, str]:
    """Run ``readerapp ARGS`` in-process with ``stdin_text``; returns (exit code, stdout, stderr)."""
    import io
    import sys
    from contextlib import redirect_stderr, redirect_stdout

    from readerapp.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin_text)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            rc = main(args)
    finally:
        sys.stdin = old
    return rc, out.getvalue(), err.getvalue()


@dataclass
class Workflow:
    db: str
    storage: Path
    raw: RawStudy
    codes: dict[tuple[str, str], str]
    labels: dict[tuple[str, str], np.ndarray]  # (code, reader) -> submitted label map
    read_ids: dict[tuple[str, str], int]
    export_dir: Path
    reader_visible: list[str] = field(default_factory=list)
    discordant_code: str = ""
    dicom_codes: list[str] = field(default_factory=list)
    service: Any = None


def submit_all(svc: Any, wf: Workflow, reader: str, by_code: dict[str, tuple[str, str]],
               same_order: bool = False) -> None:
    """A reader reads every scan of their worklist through the service API (``same_order``: in
    code order rather than the reader's own, so two readers sign the same case at once)."""
    actor = svc.login(reader, PASSWORDS[reader])
    entries = svc.worklist(actor)
    wf.reader_visible.append(repr(entries))
    for e in sorted(entries, key=lambda e: e.code) if same_order else entries:
        subj, visit = by_code[e.code]
        scan = wf.raw.scans[(subj, visit)]
        lab = reader_labels(scan, reader, big_extra=(subj, visit) == DISCORDANT)
        info = svc.submit_read(actor, e.code, lab, form_for(visit), PASSWORDS[reader])
        wf.labels[(e.code, reader)] = lab
        wf.read_ids[(e.code, reader)] = info.id
        wf.reader_visible.append(repr(info))
    wf.reader_visible.append(repr(svc.worklist(actor)))


def check_export(wf: Workflow, csv_path: Path) -> int:
    """Compare the export's final values, readers' values and changes from baseline with values
    recomputed from the submitted label maps; returns the number of cells compared."""
    import csv

    rows = {(r["subject"], r["visit"]): r for r in csv.DictReader(csv_path.open(encoding="utf-8"))}
    assert len(rows) == len(wf.codes)
    finals: dict[tuple[str, str], dict[str, float]] = {}
    for key, code in wf.codes.items():
        scan = wf.raw.scans[key]
        a = expected_endpoints(scan.hu, wf.labels[(code, "reader_a")], wf.raw.voxel_ml)
        b = expected_endpoints(scan.hu, wf.labels[(code, "reader_b")], wf.raw.voxel_ml)
        row = rows[key]
        if key == DISCORDANT:
            assert row["adjudicated"] == "1" and row["status"] == "adjudicated"
            finals[key] = a  # the adjudicator chose reader A's read
        else:
            assert row["adjudicated"] == "0" and row["status"] == "concordant", (key, row["status"])
            finals[key] = {k: (a[k] + b[k]) / 2 for k in a}
        reader_cols = {row["reader1"]: "reader1", row["reader2"]: "reader2"}
        for k in a:
            assert row[f"{k}.{reader_cols['reader_a']}"] == f"{a[k]:.6f}", (key, k)
            assert row[f"{k}.{reader_cols['reader_b']}"] == f"{b[k]:.6f}", (key, k)
    n = 0
    for key, row in rows.items():
        subj, visit = key
        base = finals[(subj, "baseline")]
        for k, v in finals[key].items():
            assert row[k] == f"{v:.6f}", (key, k, row[k], v)
            if visit == "baseline":
                assert row[f"{k}.change"] == ""
            else:
                want = f"{v - base[k]:.6f}"
                assert row[f"{k}.change"] == want, (key, k, row[f"{k}.change"], want)
                n += 1
    # the changes are real changes, not zeros
    assert any(float(r["lesion_pct.change"]) > 1.0 for r in rows.values() if r["visit"] != "baseline")
    return n
