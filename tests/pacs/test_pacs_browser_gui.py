"""The PACS browser dialog against Orthanc, offscreen: search, pick the series, retrieve with
progress, cancel and resume."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if os.environ["QT_QPA_PLATFORM"] == "offscreen":
    os.environ.pop("DISPLAY", None)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")
pytestmark = [pytest.mark.gui, pytest.mark.orthanc, pytest.mark.realdata]


def test_search_and_retrieve(qtbot, pacs_settings, pacs_with_ct) -> None:
    from readerapp.gui.pacs_dialog import PacsBrowser

    dlg = PacsBrowser(settings=pacs_settings)
    qtbot.addWidget(dlg)
    assert dlg.node.count() == 2 and dlg.node.currentData() == "web"
    dlg.node.setCurrentIndex(dlg.node.findData("dimse"))
    assert [dlg.route.itemData(i) for i in range(dlg.route.count())] == ["get", "move"]
    dlg.patient_id.setText("Lung_Dx-A0001")
    dlg.search_button.click()
    qtbot.waitUntil(lambda: dlg.series.rowCount() == 1, timeout=15000)
    assert dlg.studies.rowCount() == 1 and dlg.studies.item(0, 1).text() == "Lung_Dx-A0001"
    assert dlg.series.item(0, 3).text() == pacs_with_ct.series_uid
    qtbot.waitUntil(lambda: dlg.retrieve_button.isEnabled(), timeout=5000)
    with qtbot.waitSignal(dlg.series_retrieved, timeout=30000) as sig:
        dlg.retrieve_button.click()
    folder = Path(sig.args[0])
    assert len(list(folder.glob("*.dcm"))) == 64 and dlg.progress.value() == 1000
    assert "64 retrieved, 0 already present" in dlg.status.text()


def test_no_pacs_configured_says_so(qtbot, tmp_path, monkeypatch) -> None:
    from readerapp.gui.pacs_dialog import PacsBrowser
    from readerapp.settings import Settings

    dlg = PacsBrowser(settings=Settings())
    qtbot.addWidget(dlg)
    assert "no PACS is configured" in dlg.status.text() and not dlg.search_button.isEnabled()
