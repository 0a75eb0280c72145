"""The site's whole loop against Orthanc: pull the chest CT, import it blinded, read it, send the
read back as SEG + SR (by STOW-RS and by C-STORE), and find the results in the PACS referencing
the source series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from orthanc_kit import LoadedPacs
from orthanc_kit import reader_labels as _reader_labels

from readerapp import __version__

pytestmark = [
    pytest.mark.orthanc, pytest.mark.realdata, pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent:UserWarning"),
]

LOBES = ("RUL", "RML", "RLL", "LUL", "LLL")


@pytest.fixture
def study(tmp_path: Path):  # type: ignore[no-untyped-def]
    pytest.importorskip("highdicom")
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    svc = StudyService(str(tmp_path / "study" / "trial.sqlite"))
    svc.create_study(StudyConfig(name="PACS round trip"))
    svc.add_user(None, "admin", "admin", "admin-pass-1234")
    admin = svc.login("admin", "admin-pass-1234")
    svc.add_user(admin, "reader", "reader", "reader-pass-1234")
    return svc, admin


def test_pull_import_read_send_back(pacs_settings, pacs_with_ct: LoadedPacs, study, tmp_path: Path) -> None:
    import pydicom

    from readerapp.io.dicom import load_series
    from readerapp.pacs import open_client
    from readerapp.pacs.pull import import_series, retrieve_study, send_files
    from readerapp.pacs.results import write_results

    svc, admin = study
    dimse = open_client("dimse", pacs_settings)
    web = open_client("web", pacs_settings)
    staging = pacs_settings.effective_staging_dir()

    # pull by C-GET and import blinded (keep the staged originals: the SEG must reference them)
    [res] = retrieve_study(dimse, pacs_with_ct.study_uid, staging, route="get")
    assert res.complete and res.received == 64
    code = import_series(res, svc, admin, "SUBJ-001", "baseline", keep_staging=True)
    links = svc.case_links(admin)
    assert [(lk["code"], lk["subject"], lk["visit"]) for lk in links] == [(code, "SUBJ-001", "baseline")]

    # the reader sees a random code and a de-identified copy of the same pixels
    reader = svc.login("reader", "reader-pass-1234")
    assert [e.code for e in svc.worklist(reader)] == [code]
    case_folder = svc.case_folder(reader, code)
    blinded = pydicom.dcmread(next(case_folder.glob("*.dcm")))
    assert "Lung_Dx-A0001" not in str(blinded.get("PatientName", "")) + str(blinded.get("PatientID", ""))
    assert blinded.SeriesInstanceUID != pacs_with_ct.series_uid
    vol = svc.case_volume(reader, code)
    original = load_series([res.folder])[0]
    assert np.array_equal(vol.hu, original.hu)

    labels = _reader_labels(vol.hu)
    form = {"severity": dict.fromkeys(LOBES, 1), "fibrosis": None, "comment": ""}
    info = svc.submit_read(reader, code, labels, form, "reader-pass-1234")
    assert info.status == "signed"
    lung = int((labels >= 1).sum())
    assert info.endpoints["lung_volume_ml"] == pytest.approx(lung * vol.voxel_volume_ml, rel=1e-6)

    # results against the original series, sent by both routes (two separate pairs)
    pairs = {
        "stow": write_results(res.folder, labels, info.endpoints, tmp_path / "stow", volume=original),
        "cstore": write_results(res.folder, labels, info.endpoints, tmp_path / "cstore", volume=original),
    }
    for paths in pairs.values():
        for p in paths:
            ds = pydicom.dcmread(p)
            assert ds.SoftwareVersions == __version__
            assert ds.StudyInstanceUID == pacs_with_ct.study_uid
    # other tests share the session's Orthanc: count only the series this test adds
    before = {s.series_uid for s in web.find_series(pacs_with_ct.study_uid, modality="")}
    assert send_files(web, pairs["stow"]).sent == 2
    assert send_files(dimse, [tmp_path / "cstore"]).sent == 2

    # find them in Orthanc, pointing at the source series
    found: dict[str, list[str]] = {}
    for s in web.find_series(pacs_with_ct.study_uid, modality=""):
        if s.series_uid not in before:
            found.setdefault(s.modality, []).append(s.series_uid)
    assert len(found.get("SEG", [])) == 2 and len(found.get("SR", [])) == 2
    sent_sops = {pydicom.dcmread(p).SOPInstanceUID for ps in pairs.values() for p in ps}
    back = tmp_path / "back"
    for modality in ("SEG", "SR"):
        for series_uid in found[modality]:
            r = web.retrieve_series(pacs_with_ct.study_uid, series_uid, back)
            ds = pydicom.dcmread(next(r.folder.glob("*.dcm")))
            assert ds.SOPInstanceUID in sent_sops
            assert ds.SoftwareVersions == __version__
            if modality == "SEG":
                assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == pacs_with_ct.series_uid
                assert {str(s.SegmentLabel) for s in ds.SegmentSequence} == {"lung", "ground glass", "consolidation"}
            else:
                refs = {
                    str(ser.SeriesInstanceUID)
                    for st in ds.CurrentRequestedProcedureEvidenceSequence
                    for ser in st.ReferencedSeriesSequence
                }
                assert pacs_with_ct.series_uid in refs
    # the PACS's copy of the CT itself is untouched: still exactly 64 instances in its series
    assert len(web.find_instances(pacs_with_ct.study_uid, pacs_with_ct.series_uid)) == 64

    # the same from the command line, starting from the reader's saved read folder
    from readerapp.cli import main

    rc = main(["pacs", "send-read", str(info.folder), "--node", "dimse", "--route", "move",
               "--study", pacs_with_ct.study_uid, "--series", pacs_with_ct.series_uid,
               "--out", str(tmp_path / "cli"), "--quiet"])
    assert rc == 0
    seg = pydicom.dcmread(tmp_path / "cli" / "seg.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == pacs_with_ct.series_uid
    modalities = [s.modality for s in web.find_series(pacs_with_ct.study_uid, modality="")
                  if s.series_uid not in before]
    assert modalities.count("SEG") == 3 and modalities.count("SR") == 3
