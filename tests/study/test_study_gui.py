"""The study mode of the workstation window, offscreen: a reader opens a case from the worklist,
fills the form, saves and signs; the adjudicator decides in the side-by-side dialog; inactivity
logs out. The window shows case codes only."""

from __future__ import annotations

import datetime as dt
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


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_reader_signs_in_the_window_and_adjudicator_decides(qtbot, tmp_path: Path) -> None:
    from PySide6 import QtCore

    from readerapp.forms import ReadForm
    from readerapp.gui.main_window import MainWindow
    from readerapp.gui.study.adjudication import AdjudicationDialog
    from readerapp.gui.study.dialogs import LoginDialog, SignatureDialog
    from readerapp.gui.study.workstation import StudyWorkstation
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    clock = Clock()
    svc = StudyService(tmp_path / "s.sqlite", clock=clock)
    svc.create_study(StudyConfig(name="GUI"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    for name in ("reader_a", "reader_b", "adj"):
        svc.add_user(admin, name, kit.ROLES[name], PASSWORDS[name])
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=3)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "S1" / "day90",
                           edit=kit._edit_wrapper(kit._identity(0, 3)))
    (code,) = svc.import_folder(admin, tmp_path / "raw")

    login = LoginDialog(svc)
    qtbot.addWidget(login)
    login.fill("reader_a", "wrong-password")
    login.accept()
    assert login.actor is None and "wrong password" in login.error.text()
    login.fill("reader_a", PASSWORDS["reader_a"])
    login.accept()
    reader = login.actor
    assert reader is not None and login.password.text() == ""

    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(backend="numpy", journal_root=tmp_path / "journal", restore_policy="discard",
                     interactive=False, settings=settings)
    qtbot.addWidget(win)
    win.resize(1100, 760)
    win.show()
    ws = StudyWorkstation(win, svc, reader, interactive=False, idle_check_ms=50)
    assert ws.panel.codes == [code] and ws.panel.table.item(0, 2).text() == "new"
    with qtbot.waitSignal(win.session_ready, timeout=60000):
        ws.open_case(code)
    assert win.windowTitle() == f"ReaderApp — case {code}"
    assert win.forms.day90.isChecked() and not win.forms.day90.isEnabled()
    titles = win.windowTitle() + " " + ws.panel.who.text()
    assert not [v for v in kit._identity(0, 3).values() if v.lower() in titles.lower()]

    assert ws.sign(password=PASSWORDS["reader_a"]) is None  # the form is not filled in yet
    win.forms.set_form(ReadForm.from_dict(kit.form_for("day90")), day90=True)
    signed = ws.sign(password=PASSWORDS["reader_a"])
    assert signed is not None and signed.status == "signed" and signed.version == 1
    assert ws.panel.table.item(0, 2).text() == "signed"
    assert ws.save_to_study() is None and "reason" in ws.panel.status.text()
    import threading

    seen = []
    real_save = svc.save_read

    def save_read(*a, **kw):  # the study save runs off the GUI thread, edits refused meanwhile
        seen.append((threading.current_thread() is threading.main_thread(), win.controller.busy))
        return real_save(*a, **kw)

    svc.save_read = save_read
    v2 = ws.save_to_study(reason="re-checked the lower lobes")
    svc.save_read = real_save
    assert v2 is not None and v2.version == 2 and v2.status == "draft"
    assert seen == [(False, "the read is being saved")] and win.controller.busy is None

    sig = SignatureDialog("reader_a", svc.config.signature_meaning, "Sign")
    qtbot.addWidget(sig)
    ok = sig.buttons.button(sig.buttons.StandardButton.Ok)
    assert not ok.isEnabled()
    sig.fill("x")
    assert ok.isEnabled() and "independent" in sig.meaning.text()

    # reader B (through the API) marks far more ground glass: discordant
    b = svc.login("reader_b", PASSWORDS["reader_b"])
    lab = ph.truth.astype(np.uint8)
    lab[(lab == 1) & (np.arange(lab.shape[0]) >= 6)[:, None, None]] = 2
    rb = svc.submit_read(b, code, lab, kit.form_for("day90"), PASSWORDS["reader_b"])
    adj = svc.login("adj", PASSWORDS["adj"])
    dlg = AdjudicationDialog(svc, adj, code)
    qtbot.addWidget(dlg)
    assert "lesion_pct" in dlg.highlighted
    assert not dlg.image["A"].pixmap().isNull() and not dlg.image["B"].pixmap().isNull()
    assert dlg.sign(signed.id, password=PASSWORDS["adj"]) is False  # no reason yet
    dlg.reason.setPlainText("read A matches the consolidation extent")
    assert dlg.sign(rb.id, password="wrong-password") is False and "password" in dlg.error.text()
    assert dlg.sign(signed.id, password=PASSWORDS["adj"]) is True
    assert svc.adjudication_worklist(adj)[0].status == "adjudicated"

    # inactivity: the window logs out by itself and shows no image
    with qtbot.waitSignal(ws.locked, timeout=3000):
        clock.now += dt.timedelta(minutes=16)
    assert win.controller.session is None and win.windowTitle() == "ReaderApp — logged out"
    assert ws.panel.codes == []
    assert svc.audit_verify().ok


def test_adjudicator_signs_a_corrected_read_from_the_window(qtbot, tmp_path: Path) -> None:
    from PySide6 import QtCore

    from readerapp.gui.main_window import MainWindow
    from readerapp.gui.study.workstation import StudyWorkstation
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="GUI"))
    svc.add_user(None, "admin", "admin", PASSWORDS["admin"])
    admin = svc.login("admin", PASSWORDS["admin"])
    for name in ("reader_a", "reader_b", "adj"):
        svc.add_user(admin, name, kit.ROLES[name], PASSWORDS[name])
    ph = make_chest_phantom(kit.SHAPE, kit.SPACING, seed=4)
    write_synthetic_series(ph.volume, tmp_path / "raw" / "S1" / "day28")
    (code,) = svc.import_folder(admin, tmp_path / "raw")
    truth = ph.truth.astype(np.uint8)
    more = truth.copy()
    more[(more == 1) & (np.arange(truth.shape[0]) >= 6)[:, None, None]] = 2
    ra = svc.submit_read(svc.login("reader_a", PASSWORDS["reader_a"]), code, truth,
                         kit.form_for("day28"), PASSWORDS["reader_a"])
    svc.submit_read(svc.login("reader_b", PASSWORDS["reader_b"]), code, more, kit.form_for("day28"),
                    PASSWORDS["reader_b"])

    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(backend="numpy", journal_root=tmp_path / "journal", restore_policy="discard",
                     interactive=False, settings=settings)
    qtbot.addWidget(win)
    win.show()
    ws = StudyWorkstation(win, svc, svc.login("adj", PASSWORDS["adj"]), interactive=False)
    assert ws.panel.codes == [code] and ws.panel.table.item(0, 2).text() == "pending"
    assert ws.panel.correct_button.isVisibleTo(ws.panel) and not ws.panel.sign_button.isVisibleTo(ws.panel)
    with qtbot.waitSignal(win.session_ready, timeout=60000):
        ws.open_case(code)
    assert np.array_equal(win.controller.session.labels, truth)  # starts from read A
    win.controller.session.labels[10][truth[10] == 1] = 2  # the correction (tests edit the array)
    assert ws.sign_correction(password=PASSWORDS["adj"]) is None  # no reason given
    final = ws.sign_correction(password=PASSWORDS["adj"], reason="GGO on slice 10 missed by A")
    assert final is not None and final.kind == "adjudication" and final.based_on_read_id == ra.id
    assert final.endpoints["lesion_pct"] > ra.endpoints["lesion_pct"]
    assert ws.panel.table.item(0, 2).text() == "adjudicated"
