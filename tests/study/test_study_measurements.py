"""A study read keeps the reader's rulers and ROIs: saved into its folder, back when reopened."""

from __future__ import annotations

from pathlib import Path

import studykit as kit
from studykit import PASSWORDS


def test_study_read_keeps_measurements(tmp_path: Path) -> None:
    from readerapp.editing.session import ReadingSession, prepare
    from readerapp.forms import ReadForm
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.measurements import make
    from readerapp.phantom import make_chest_phantom
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="M"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    svc.add_user(admin, "reader_a", kit.ROLES["reader_a"], PASSWORDS["reader_a"])
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=3)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "S1" / "baseline",
                           edit=kit._edit_wrapper(kit._identity(0, 0)))
    (code,) = svc.import_folder(admin, tmp_path / "raw")
    reader = svc.login("reader_a", PASSWORDS["reader_a"])
    vol = svc.case_volume(reader, code)
    z = vol.shape[0] // 2
    m = make("ellipse", 0, [(z, 10, 10), (z, 30, 40)], vol.hu, vol.spacing_zyx)
    info = svc.save_read(reader, code, ph.truth.copy(), ReadForm.blank(False), source="loaded",
                         measurements=[m])
    assert (info.labels_path.parent / "measurements.json").is_file()
    s = ReadingSession(prepare(vol, labels_path=info.labels_path), backend="numpy", use_journal=False)
    assert s.measurements == [m] and s.source == "loaded"


def test_measurements_travel_through_the_study_server(tmp_path: Path) -> None:
    """The StudyClient passes rulers and ROIs to the server; the read folder it downloads has them."""
    from fastapi.testclient import TestClient

    from readerapp.editing.session import ReadingSession, prepare
    from readerapp.forms import ReadForm
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.measurements import make
    from readerapp.phantom import make_chest_phantom
    from readerapp.readfile import load_read
    from readerapp.server.app import create_app
    from readerapp.server.client import StudyClient
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="M"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    svc.add_user(admin, "reader_a", kit.ROLES["reader_a"], PASSWORDS["reader_a"])
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=3)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "S1" / "baseline",
                           edit=kit._edit_wrapper(kit._identity(0, 0)))
    (code,) = svc.import_folder(admin, tmp_path / "raw")
    client = StudyClient("http://testserver", cache_dir=tmp_path / "cache")
    client.http = TestClient(create_app(svc), base_url="http://testserver")
    reader = client.login("reader_a", PASSWORDS["reader_a"])
    vol = client.case_volume(reader, code)
    z = vol.shape[0] // 2
    m = make("ruler", 0, [(z, 10, 10), (z, 30, 40)], vol.hu, vol.spacing_zyx)
    info = client.save_read(reader, code, ph.truth.copy(), ReadForm.blank(False), source="loaded",
                            measurements=[m])
    info = client.get_read(reader, info.id)
    assert load_read(info.folder).measurements == [m]
    s = ReadingSession(prepare(vol, labels_path=info.labels_path), backend="numpy", use_journal=False)
    assert s.measurements == [m] and s.source == "loaded"
