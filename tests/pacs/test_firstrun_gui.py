"""The first-run dialog, offscreen: defaults kept, or a site's database and PACS saved (passwords
in the private credentials file only), and its connection tests answer clearly."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if os.environ["QT_QPA_PLATFORM"] == "offscreen":
    os.environ.pop("DISPLAY", None)

import json  # noqa: E402
import stat  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")
pytestmark = pytest.mark.gui


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tmp_path / "config"
    monkeypatch.setenv("READERAPP_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("READERAPP_SITE_CONFIG_DIR", str(tmp_path / "site"))
    monkeypatch.setenv("READERAPP_DATA_DIR", str(tmp_path / "data"))
    return cfg


def test_skip_keeps_defaults_and_does_not_return(qtbot, fresh: Path) -> None:
    from readerapp.gui.firstrun import FirstRunDialog
    from readerapp.settings import Settings, is_first_run

    assert is_first_run()
    dlg = FirstRunDialog()
    qtbot.addWidget(dlg)
    assert not dlg.db_host.isEnabled() and not dlg.pacs_box.isChecked()
    dlg.skip_button.click()
    assert dlg.saved == Settings() and not is_first_run()


def test_site_database_and_pacs_are_saved(qtbot, fresh: Path) -> None:
    from readerapp.gui.firstrun import FirstRunDialog
    from readerapp.settings import load_settings

    dlg = FirstRunDialog()
    qtbot.addWidget(dlg)
    dlg.db_server.setChecked(True)
    assert dlg.db_host.isEnabled()
    dlg.save_button.click()  # no host yet: refused, stays open
    assert "host name" in dlg.status.text() and dlg.saved is None
    dlg.db_host.setText("db.site.example")
    dlg.db_user.setText("reader")
    dlg.db_password.setText("db-secret-9")
    dlg.db_storage.setText("/mnt/study")
    dlg.pacs_box.setChecked(True)
    dlg.pacs_kind.setCurrentIndex(1)  # DIMSE
    assert dlg.pacs_host.isEnabled() and not dlg.pacs_url.isEnabled()
    dlg.pacs_name.setText("main")
    dlg.pacs_host.setText("pacs.site.example")
    dlg.pacs_port.setValue(11112)
    dlg.pacs_ae.setText("SITEPACS")
    dlg.save_button.click()
    assert dlg.saved is not None, dlg.status.text()
    s = load_settings()
    assert s.database_url == "postgresql+psycopg://reader@db.site.example:5432/readerapp"
    assert s.study_storage == "/mnt/study"
    assert (s.default_pacs, s.pacs["main"].host, s.pacs["main"].port, s.pacs["main"].ae_title) == (
        "main", "pacs.site.example", 11112, "SITEPACS")
    text = (fresh / "settings.json").read_text()
    assert "db-secret-9" not in text
    creds = fresh / "credentials.json"
    assert json.loads(creds.read_text())["database"] == "db-secret-9"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert s.effective_database_url().startswith("postgresql+psycopg://reader:db-secret-9@")


def test_connection_tests_answer_clearly(qtbot, fresh: Path) -> None:
    from orthanc_kit import free_port

    from readerapp.gui.firstrun import FirstRunDialog

    dlg = FirstRunDialog()
    qtbot.addWidget(dlg)
    dlg.db_server.setChecked(True)
    dlg.db_host.setText("127.0.0.1")
    dlg.db_port.setValue(free_port())
    dlg.db_test.click()
    assert "cannot connect to 127.0.0.1" in dlg.status.text()
    dlg.pacs_box.setChecked(True)
    dlg.pacs_kind.setCurrentIndex(1)
    dlg.pacs_host.setText("127.0.0.1")
    dlg.pacs_port.setValue(free_port())
    dlg.pacs_ae.setText("NOBODY")
    dlg.pacs_test.click()
    assert "cannot connect" in dlg.status.text()


@pytest.mark.orthanc
def test_pacs_echo_from_the_dialog(qtbot, fresh: Path, pacs_with_ct) -> None:
    from orthanc_kit import PASSWORD, USER

    from readerapp.gui.firstrun import FirstRunDialog

    dlg = FirstRunDialog()
    qtbot.addWidget(dlg)
    dlg.pacs_box.setChecked(True)
    dlg.pacs_url.setText(pacs_with_ct.server.dicomweb_url)
    dlg.pacs_user.setText(USER)
    dlg.pacs_password.setText(PASSWORD)
    dlg.pacs_test.click()
    assert "answered" in dlg.status.text(), dlg.status.text()
    dlg.pacs_password.setText("wrong")
    dlg.pacs_test.click()
    assert "refused the credentials" in dlg.status.text()
