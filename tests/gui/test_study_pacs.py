"""Study mode, administrator: retrieve from a (stand-in) PACS straight into the blinded study, and
send a case's final read back as SEG + SR, from the window's menu, with progress and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from readerapp.pacs.models import RetrieveResult, SendResult, SeriesHit, StudyHit

pytestmark = pytest.mark.gui

PW = {"admin": "admin-pass-1234", "ra": "reader-a-pass-1", "rb": "reader-b-pass-1"}


class FakePacs:
    """One study with one CT series (the original files); keeps what it is sent."""

    name = "fake"

    def __init__(self, folder: Path, study_uid: str, series_uid: str) -> None:
        self.folder, self.study_uid, self.series_uid = folder, study_uid, series_uid
        self.received: list[Path] = []
        self.closed = 0

    def find_studies(self, **kw):  # type: ignore[no-untyped-def]
        return [StudyHit(self.study_uid, patient_id="P-1", study_date="20240101", n_series=1)]

    def find_series(self, study_uid: str, modality: str = "CT") -> list[SeriesHit]:
        return [SeriesHit(self.study_uid, self.series_uid, "CT", n_instances=12)] if study_uid == self.study_uid else []

    def retrieve_series(self, study_uid, series_uid, dest, progress=None) -> RetrieveResult:  # type: ignore[no-untyped-def]
        out = Path(dest) / study_uid / series_uid
        shutil.copytree(self.folder, out, dirs_exist_ok=True)
        n = len(list(out.glob("*.dcm")))
        if progress is not None:
            progress(0.5, "retrieving")
        return RetrieveResult(out, study_uid, series_uid, expected=n, received=n)

    def send(self, files, progress=None) -> SendResult:  # type: ignore[no-untyped-def]
        self.received += [Path(f) for f in files]
        return SendResult(sent=len(files))

    def close(self) -> None:
        self.closed += 1


def test_admin_retrieves_into_the_study_and_sends_the_final_read_back(qtbot, tmp_path, monkeypatch):
    pytest.importorskip("highdicom")
    import pydicom
    from PySide6 import QtCore

    from readerapp.gui.main_window import MainWindow
    from readerapp.gui.study.workstation import StudyWorkstation
    from readerapp.io.dicom_write import write_synthetic_series
    from readerapp.phantom import make_chest_phantom
    from readerapp.settings import PacsNode, Settings
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    monkeypatch.setenv("READERAPP_DATA_DIR", str(tmp_path / "data"))
    ph = make_chest_phantom((12, 48, 48), (6.0, 6.0, 10.0), seed=5)
    raw = tmp_path / "pacs-files"
    write_synthetic_series(ph.volume, raw)
    first = pydicom.dcmread(sorted(raw.glob("*.dcm"))[0])
    pacs = FakePacs(raw, str(first.StudyInstanceUID), str(first.SeriesInstanceUID))
    settings = Settings(pacs={"fake": PacsNode(kind="dicomweb", url="http://pacs.invalid/dicom-web")},
                        default_pacs="fake", staging_dir=str(tmp_path / "staging"))

    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="PACS GUI"))
    svc.add_user(None, "admin", "admin", PW["admin"])
    admin = svc.login("admin", PW["admin"])
    for r in ("ra", "rb"):
        svc.add_user(admin, r, "reader", PW[r])

    win = MainWindow(backend="numpy", journal_root=tmp_path / "journal", restore_policy="discard",
                     interactive=False, settings=QtCore.QSettings(str(tmp_path / "q.ini"),
                                                                  QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    ws = StudyWorkstation(win, svc, admin, interactive=False, pacs_settings=settings,
                          pacs_client_factory=lambda name: pacs)
    texts = [a.text() for a in ws.menu.actions()]
    assert "Retrieve from PACS into the study…" in texts and "Send final read to PACS…" in texts
    assert ws.panel.codes == [] and not win.errors  # the admin's worklist: every case (none yet)

    # Retrieve + import, from the menu action.
    ws.pacs.retrieve_action.trigger()
    br = ws.pacs.browser
    assert br.isVisible() and br.retrieve_button.text() == "Retrieve and import"
    br.search()
    qtbot.waitUntil(lambda: br.series.rowCount() == 1, timeout=10_000)
    br.retrieve()  # no subject yet: refused at once, nothing retrieved
    assert "subject" in br.status.text() and not list((tmp_path / "staging").rglob("*.dcm"))
    br.subject.setText("1001")
    br.visit.setCurrentIndex(br.visit.findData("baseline"))
    with qtbot.waitSignal(br.case_imported, timeout=30_000) as sig:
        br.retrieve()
    code = sig.args[0]
    assert f"case {code}" in br.status.text()
    assert ws.panel.codes == [code] and "1001 baseline" in ws.panel.table.item(0, 2).text()
    assert not list((tmp_path / "staging").rglob("*.dcm"))  # the identifiable copy is gone
    orig = svc.case_original(admin, code)
    assert (orig.original_study_uid, orig.original_series_uid) == (pacs.study_uid, pacs.series_uid)
    # The same subject and visit again: refused at once, with the case it is.
    br.subject.setText("1001")
    br.retrieve()
    assert f"imported before (case {code})" in br.status.text()
    br.close()

    # No final read yet: refused with the reason, nothing sent.
    ws.panel.table.selectRow(0)
    assert ws.pacs.send_final_read() is False
    assert "no final read" in win.errors[-1] and pacs.received == []

    # Two concordant signed reads make the final value; send it back from the menu.
    form = {"severity": dict.fromkeys(("RUL", "RML", "RLL", "LUL", "LLL"), 1), "fibrosis": None, "comment": ""}
    truth = ph.truth.astype(np.uint8)
    ids = [svc.submit_read(svc.login(r, PW[r]), code, truth, form, PW[r]).id for r in ("ra", "rb")]
    ws.refresh()
    ws.panel.table.selectRow(0)
    with qtbot.waitSignal(ws.pacs.sent, timeout=60_000):
        ws.pacs.send_action.trigger()
    ws.pacs.wait()
    assert sorted(p.parent.name + "/" + p.name for p in pacs.received) == [
        f"read{ids[0]}/seg.dcm", f"read{ids[0]}/sr.dcm", f"read{ids[1]}/seg.dcm", f"read{ids[1]}/sr.dcm"]
    assert "4 object(s)" in ws.panel.status.text() and ws.pacs.progress is None
    assert [r for r in svc.audit_records(admin) if r.action == "export.pacs"]

    # A PACS that refuses: a clear error in the window, the progress dialog gone.
    def refuse(files, progress=None):  # type: ignore[no-untyped-def]
        return SendResult(sent=0, failed=["seg.dcm: 0xA700 out of resources"])

    monkeypatch.setattr(pacs, "send", refuse)
    with qtbot.waitSignal(ws.pacs.failed, timeout=60_000):
        ws.pacs.send_final_read(code)
    ws.pacs.wait()
    assert f"Case {code} was not sent" in win.errors[-1] and "refused" in win.errors[-1]
    assert ws.pacs.progress is None
    win.close()


def test_readers_get_no_pacs_actions_and_sign_button_asks_for_password(qtbot, tmp_path, monkeypatch):
    """A reader's Study menu has no PACS items; the Sign button no longer passes clicked()'s
    ``False`` as the password (it opens the signature dialog)."""
    from PySide6 import QtCore

    from readerapp.gui.main_window import MainWindow
    from readerapp.gui.study import workstation as wsmod
    from readerapp.study.config import StudyConfig
    from readerapp.study.service import StudyService

    svc = StudyService(tmp_path / "s.sqlite")
    svc.create_study(StudyConfig(name="x"))
    svc.add_user(None, "admin", "admin", PW["admin"])
    svc.add_user(svc.login("admin", PW["admin"]), "ra", "reader", PW["ra"])
    win = MainWindow(backend="numpy", journal_root=tmp_path / "j", interactive=False,
                     settings=QtCore.QSettings(str(tmp_path / "q.ini"), QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    ws = wsmod.StudyWorkstation(win, svc, svc.login("ra", PW["ra"]), interactive=False)
    assert ws.pacs is None and not [a for a in ws.menu.actions() if "PACS" in a.text()]
    calls = []
    monkeypatch.setattr(ws, "save_to_study", lambda reason=None: calls.append(("save", reason)))
    ws.panel.save_button.click()
    assert calls == [("save", None)]
