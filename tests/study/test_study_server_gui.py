"""The study window on a study server (offscreen): log-in, worklist, open a case, sign, and the
adjudicator's side-by-side dialog, with no database or study folder on the workstation."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.pop("DISPLAY", None)
os.environ.pop("WAYLAND_DISPLAY", None)
os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkOSOpenGLRenderWindow"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import studykit as kit  # noqa: E402
from studykit import PASSWORDS  # noqa: E402

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")
pytest.importorskip("vtkmodules.vtkRenderingOpenGL2", reason="VTK is not installed")
pytestmark = pytest.mark.gui


def test_the_study_window_works_through_a_study_server(qtbot, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from PySide6 import QtCore

    from readerapp.forms import ReadForm
    from readerapp.gui.main_window import MainWindow
    from readerapp.gui.study.adjudication import AdjudicationDialog
    from readerapp.gui.study.dialogs import LoginDialog
    from readerapp.gui.study.workstation import StudyWorkstation
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom
    from readerapp.server.app import create_app
    from readerapp.server.client import StudyClient
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    server_side = tmp_path / "server"
    svc = StudyService(server_side / "s.sqlite")
    svc.create_study(StudyConfig(name="GUI over server"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    for name in ("reader_a", "reader_b", "adj"):
        svc.add_user(admin, name, kit.ROLES[name], PASSWORDS[name])
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=3)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "S1" / "day90",
                           edit=kit._edit_wrapper(kit._identity(0, 3)))
    (code,) = svc.import_folder(admin, tmp_path / "raw")

    client = StudyClient("http://testserver", cache_dir=tmp_path / "workstation-cache")
    client.http = TestClient(create_app(svc), base_url="http://testserver")
    login = LoginDialog(client)
    qtbot.addWidget(login)
    login.fill("reader_a", PASSWORDS["reader_a"])
    login.accept()
    reader = login.actor
    assert reader is not None

    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(backend="numpy", journal_root=tmp_path / "journal", restore_policy="discard",
                     interactive=False, settings=settings)
    qtbot.addWidget(win)
    win.resize(1100, 760)
    win.show()
    ws = StudyWorkstation(win, client, reader, interactive=False, idle_check_ms=50)
    assert ws.panel.codes == [code]
    with qtbot.waitSignal(win.session_ready, timeout=60000):
        ws.open_case(code)
    # the images came through the server into the workstation's cache, never from the study folder
    assert (tmp_path / "workstation-cache" / "cases" / code).is_dir()
    win.forms.set_form(ReadForm.from_dict(kit.form_for("day90")), day90=True)
    signed = ws.sign(password=PASSWORDS["reader_a"])
    assert signed is not None and signed.status == "signed"
    assert ws.panel.table.item(0, 2).text() == "signed"

    b = client.login("reader_b", PASSWORDS["reader_b"])
    lab = ph.truth.astype(np.uint8)
    lab[(lab == 1) & (np.arange(lab.shape[0]) >= 6)[:, None, None]] = 2
    client.submit_read(b, code, lab, kit.form_for("day90"), PASSWORDS["reader_b"])
    adj = client.login("adj", PASSWORDS["adj"])
    dlg = AdjudicationDialog(client, adj, code)
    qtbot.addWidget(dlg)
    assert not dlg.image["A"].pixmap().isNull() and not dlg.image["B"].pixmap().isNull()
    dlg.reason.setPlainText("read A matches the consolidation extent")
    assert dlg.sign(signed.id, password=PASSWORDS["adj"]) is True
    assert client.adjudication_worklist(adj)[0].status == "adjudicated"
    assert client.audit_verify().ok


def test_first_run_dialog_saves_a_study_server(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READERAPP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("READERAPP_SITE_CONFIG_DIR", str(tmp_path / "site"))
    monkeypatch.setenv("READERAPP_DATA_DIR", str(tmp_path / "data"))
    from readerapp.gui.firstrun import FirstRunDialog
    from readerapp.settings import load_settings

    dlg = FirstRunDialog()
    qtbot.addWidget(dlg)
    assert not dlg.study_server_url.isEnabled()
    dlg.db_study_server.setChecked(True)
    assert dlg.study_server_url.isEnabled() and not dlg.db_host.isEnabled()
    dlg.study_server_url.setText("http://db.site.example:8443")  # plain HTTP off this machine: refused
    dlg.save_button.click()
    assert dlg.saved is None and "https://" in dlg.status.text()
    dlg.study_server_url.setText("https://readerapp.site.example:8443")
    dlg.save_button.click()
    s = load_settings()
    assert s.study_server == "https://readerapp.site.example:8443" and s.database_url == ""
