"""De-identification inside sequences (PS3.15 Annex E over the whole tree), burned-in refusal,
complete imports, and a local study's files kept private with no import order in their times."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pydicom
import pytest
import studykit as kit
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from studykit import PASSWORDS, cli

from readerapp.study.config import StudyConfig
from readerapp.study.deid import ANNEX_E, FUNCTIONAL_GROUP_MACROS
from readerapp.study.errors import ImportDataError
from readerapp.study.service import StudyService

MRN = "MRN7700413"
SECRETS = (MRN, "Zyxwort", "Hermione", "Jinyintan", "Omnipaque", "WUHAN-CT-7")


def _study(tmp_path: Path) -> StudyService:
    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="T"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    svc.add_user(admin, "reader_a", "reader", PASSWORDS["reader_a"])
    return svc


def _identity_item() -> Dataset:
    """What the tester found in kept sequences: age, sex, weight, size, names, an MRN."""
    item = Dataset()
    item.PatientAge = "047Y"
    item.PatientSex = "F"
    item.PatientWeight = "71.5"
    item.PatientSize = "1.68"
    item.PatientName = "Zyxwort^Hermione"
    item.PatientID = MRN
    item.StationName = "WUHAN-CT-7"
    item.add_new(0x00430010, "LO", "GEMS_PARM_01")
    item.add_new(0x00431010, "OB", f"maker note {MRN}".encode())  # a maker note
    item.add(DataElement(0x00189999, "UN", MRN.encode()))  # an element of unknown VR
    return item


def _icon() -> Dataset:
    icon = Dataset()
    icon.Rows, icon.Columns, icon.SamplesPerPixel = 4, 4, 1
    icon.PhotometricInterpretation = "MONOCHROME2"
    icon.BitsAllocated = icon.BitsStored = 8
    icon.HighBit, icon.PixelRepresentation = 7, 0
    icon.PixelData = (MRN + "ABCDEF").encode()[:16]
    return icon


def _nasty(ident: dict[str, str]):
    def edit(_i: int, ds: Any) -> None:
        for k, v in ident.items():
            setattr(ds, k, v)
        ds.ContrastBolusAgent = f"Omnipaque 350 for {MRN}"
        ds.ImageComments = f"patient {MRN}"
        ds.PatientAge = "047Y"
        ds.AcquisitionContextSequence = Sequence([_identity_item()])
        ds.IconImageSequence = Sequence([_icon()])
        ds.add_new(0x00090010, "LO", "ZYXWORT PRIVATE")
        ds.add_new(0x00091010, "LO", "Zyxwort private copy")
        ds.add(DataElement(0x00181030, "UN", f"protocol {MRN}".encode()))
        for kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
            for group in getattr(ds, kw, []):
                group.AcquisitionContextSequence = Sequence([_identity_item()])
                group.CTExposureSequence = Sequence([Dataset()])
                group.CTExposureSequence[0].CTDIvol = 12.5
                group.CTExposureSequence[0].update(_identity_item())
                group.FrameContentSequence = getattr(group, "FrameContentSequence", Sequence([Dataset()]))
                group.FrameContentSequence[0].FrameComments = f"frame of {MRN}"
                group.FrameContentSequence[0].FrameAcquisitionDateTime = "20200314101010"
                group.ReferencedImageSequence = Sequence([_identity_item()])
                group.IconImageSequence = Sequence([_icon()])
                group.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
                group.add_new(0x00291010, "OB", MRN.encode())

    return edit


def _walk(ds: Dataset, top: bool, path: str = "") -> list[str]:
    bad = []
    for elem in ds:
        where = f"{path}{elem.keyword or elem.tag}"
        if elem.tag.is_private:
            bad.append(f"private {where}")
        if elem.VR in ("OB", "OW", "UN", "AS", "OF", "OD", "OL", "OV") and not (top and elem.keyword == "PixelData"):
            bad.append(f"{elem.VR} {where}")
        if elem.keyword in ANNEX_E and not (top and elem.keyword in (
                "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                "ReferringPhysicianName", "StudyID", "AccessionNumber", "ContrastBolusAgent",
                "AcquisitionContextSequence")):
            bad.append(f"Annex E {where}")
        if elem.VR == "SQ":
            for item in elem.value:
                bad += _walk(item, False, where + ">")
    return bad


@pytest.mark.parametrize("enhanced", [True, False])
def test_identity_inside_sequences_does_not_survive(tmp_path: Path, enhanced: bool) -> None:
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    svc = _study(tmp_path)
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=5)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "S7" / "baseline", enhanced=enhanced,
                           edit=_nasty(kit._identity(1, 0)))
    admin = svc.login("admin", PASSWORDS["admin"])
    (code,) = svc.import_folder(admin, tmp_path / "raw")
    files = sorted((svc.storage / "cases" / code).glob("*.dcm"))
    assert files
    for f in files:
        raw = f.read_bytes()
        assert not [s for s in SECRETS if s.encode() in raw], f
        ds = pydicom.dcmread(f)
        assert _walk(ds, True) == []
        assert ds.ContrastBolusAgent == "CONTRAST" and ds.PatientID == code
        assert "AcquisitionContextSequence" in ds and len(ds.AcquisitionContextSequence) == 0
        if enhanced:
            for kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
                for group in ds[kw].value:
                    assert {e.keyword for e in group} <= set(FUNCTIONAL_GROUP_MACROS)
            assert ds.SharedFunctionalGroupsSequence[0].CTExposureSequence[0].CTDIvol == 12.5
    # the de-identified scan still measures
    r = svc.login("reader_a", PASSWORDS["reader_a"])
    info = svc.save_read(r, code, ph.truth.astype("uint8"), kit.form_for("baseline"))
    assert info.endpoints["lesion_pct"] > 0


@pytest.mark.parametrize("how", ["burned_in", "derived_secondary", "conversion"])
def test_images_that_may_show_identity_are_refused_unless_confirmed(tmp_path: Path, how: str) -> None:
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    def edit(_i: int, ds: Any) -> None:
        if how == "burned_in":
            ds.BurnedInAnnotation = "YES"
        elif how == "derived_secondary":
            ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        else:
            ds.ConversionType = "WSD"

    svc = _study(tmp_path)
    write_synthetic_series(make_chest_phantom(kit.SHAPE, kit.SPACING, seed=2).volume,
                           tmp_path / "raw" / "S1" / "baseline", edit=edit)
    admin = svc.login("admin", PASSWORDS["admin"])
    with pytest.raises(ImportDataError, match="identity in its pixels"):
        svc.import_folder(admin, tmp_path / "raw")
    assert not list((svc.storage / "cases").glob("*")) if (svc.storage / "cases").exists() else True
    rc, out, err = cli(["study", "import", "--db", str(tmp_path / "s.sqlite"), "--folder",
                        str(tmp_path / "raw"), "--accept-burned-in"], PASSWORDS["admin"])
    assert rc == 0, err
    recs = svc.audit_records(svc.login("admin", PASSWORDS["admin"]))
    assert any(r.action == "case.import" and "waived" in r.reason for r in recs)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_scan_with_an_unreadable_file_is_refused_naming_it(tmp_path: Path, damage: str) -> None:
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    svc = _study(tmp_path)
    folder = tmp_path / "raw" / "S1" / "baseline"
    write_synthetic_series(make_chest_phantom(kit.SHAPE, kit.SPACING, seed=2).volume, folder)
    last = sorted(folder.glob("*"))[-1]  # the end slice: no gap check would see it missing
    data = last.read_bytes()
    last.write_bytes(b"\0" * 50 if damage == "garbage" else data[: len(data) - 500])
    (folder / "README.txt").write_text("notes")  # plain notes are passed over
    admin = svc.login("admin", PASSWORDS["admin"])
    with pytest.raises(ImportDataError, match=last.name):
        svc.import_folder(admin, tmp_path / "raw")
    assert svc.case_links(admin) == []


def test_local_study_files_are_private_and_keep_no_import_order(tmp_path: Path, monkeypatch) -> None:
    import readerapp.fileio as fileio
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom

    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                        real_fsync(fd)))
    old_umask = os.umask(0o022)  # a permissive umask, as on most desktops
    try:
        svc = _study(tmp_path)
        ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=2)
        for s in ("S1", "S2"):
            write_synthetic_series(ph.volume, tmp_path / "raw" / s / "baseline")
        admin = svc.login("admin", PASSWORDS["admin"])
        codes = svc.import_folder(admin, tmp_path / "raw")
        r = svc.login("reader_a", PASSWORDS["reader_a"])
        svc.save_read(r, codes[0], ph.truth.astype("uint8"), kit.form_for("baseline"))
        out = tmp_path / "links.csv"
        rc, _, err = cli(["study", "links", "--db", str(tmp_path / "s.sqlite"), "--user", "admin",
                          "--out", str(out)], PASSWORDS["admin"])
        assert rc == 0, err
    finally:
        os.umask(old_umask)

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(tmp_path / "s.sqlite") == 0o600
    assert mode(tmp_path / "s.audit-key") == 0o600
    assert mode(out) == 0o600
    assert mode(tmp_path / "links.csv.anchor.txt") == 0o600
    assert svc.audit_verify([(tmp_path / "links.csv.anchor.txt").read_text()]).ok
    for p in [svc.storage, *svc.storage.rglob("*")]:
        assert mode(p) == (0o700 if p.is_dir() else 0o600), p
    # the case folders and files all carry one fixed time: no import order in a listing
    case_paths = [svc.storage / "cases", *(svc.storage / "cases").rglob("*")]
    assert {int(p.stat().st_mtime) for p in case_paths} == {946684800}
    # every stored image was fsynced (and its folder) before the commit
    stored = {str(p) for p in (svc.storage / "cases").rglob("*.dcm")}
    assert stored <= set(synced)
    assert {str(svc.storage / "cases" / c) for c in codes} <= set(synced)
