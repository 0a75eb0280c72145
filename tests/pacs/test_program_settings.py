"""Program settings: embedded defaults on a fresh machine, layers, round trips, and passwords kept
out of the settings file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from readerapp import __version__
from readerapp.cli import main


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    d = {k: tmp_path / k for k in ("config", "site", "data")}
    monkeypatch.setenv("READERAPP_CONFIG_DIR", str(d["config"]))
    monkeypatch.setenv("READERAPP_SITE_CONFIG_DIR", str(d["site"]))
    monkeypatch.setenv("READERAPP_DATA_DIR", str(d["data"]))
    for var in ("READERAPP_DATABASE_URL", "READERAPP_DATABASE_PASSWORD", "READERAPP_PACS_PASSWORD_MAIN"):
        monkeypatch.delenv(var, raising=False)
    return d


def test_no_configuration_gives_embedded_defaults(dirs: dict[str, Path]) -> None:
    from readerapp.settings import is_first_run, load_settings

    assert is_first_run()
    s = load_settings()
    assert s.pacs == {} and s.database_url == "" and s.local_ae_title == "READERAPP"
    assert s.effective_database_url() == "sqlite:///" + (dirs["data"] / "study" / "study.sqlite").as_posix()
    assert s.effective_staging_dir() == dirs["data"] / "pacs-staging"
    assert not dirs["config"].exists()  # reading never writes


def test_platform_folders_without_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    from readerapp.settings import config_dir, data_dir

    monkeypatch.delenv("READERAPP_CONFIG_DIR", raising=False)
    monkeypatch.delenv("READERAPP_DATA_DIR", raising=False)
    assert config_dir() == Path(platformdirs.user_config_dir("ReaderApp"))
    assert data_dir() == Path(platformdirs.user_data_dir("ReaderApp"))
    assert "ReaderApp" in config_dir().parts


def test_saved_and_reloaded(dirs: dict[str, Path]) -> None:
    from readerapp.settings import PacsNode, Settings, is_first_run, load_settings, save_settings

    s = Settings(
        database_url="postgresql+psycopg://reader@db.example.org/trial",
        storage_port=11200,
        default_pacs="main",
        pacs={"main": PacsNode(kind="dimse", host="pacs.example.org", port=11112, ae_title="MAINPACS"),
              "web": PacsNode(kind="dicomweb", url="https://pacs/dicom-web", username="svc")},
    )
    path = save_settings(s)
    assert path == dirs["config"] / "settings.json" and not is_first_run()
    data = json.loads(path.read_text())
    assert data["readerapp_version"] == __version__
    assert "password" not in path.read_text().lower()
    again = load_settings()
    assert again == s
    assert again.node() == ("main", s.pacs["main"])
    assert again.node("web")[1].url == "https://pacs/dicom-web"


def test_site_file_under_user_file(dirs: dict[str, Path]) -> None:
    from readerapp.settings import load_settings, save_settings, set_value

    dirs["site"].mkdir()
    (dirs["site"] / "settings.json").write_text(json.dumps({
        "database_url": "postgresql+psycopg://reader@site-db/trial",
        "pacs": {"main": {"kind": "dicomweb", "url": "https://site-pacs/dicom-web"}},
    }))
    s = load_settings()
    assert s.database_url.endswith("@site-db/trial") and s.pacs["main"].url == "https://site-pacs/dicom-web"
    save_settings(set_value(s, "pacs.main.timeout_s", "5"))
    s2 = load_settings()
    assert s2.pacs["main"].timeout_s == 5.0 and s2.pacs["main"].url == "https://site-pacs/dicom-web"
    # the user's file holds only the user's own change, so IT's later edits still arrive
    user = json.loads((dirs["config"] / "settings.json").read_text())
    assert user == {"pacs": {"main": {"timeout_s": 5.0}}, "readerapp_version": __version__}
    (dirs["site"] / "settings.json").write_text(json.dumps({
        "pacs": {"main": {"kind": "dicomweb", "url": "https://new-pacs/dicom-web"}}}))
    s3 = load_settings()
    assert s3.pacs["main"].url == "https://new-pacs/dicom-web" and s3.pacs["main"].timeout_s == 5.0


def test_bad_files_and_values_are_clear(dirs: dict[str, Path]) -> None:
    from readerapp.settings import Settings, SettingsError, load_settings, set_value

    dirs["config"].mkdir()
    p = dirs["config"] / "settings.json"
    p.write_text("{ not json")
    with pytest.raises(SettingsError, match=r"settings.json: not valid JSON \(line 1"):
        load_settings()
    p.write_text(json.dumps({"databse_url": "x"}))
    with pytest.raises(SettingsError, match="unknown setting.*databse_url"):
        load_settings()
    s = Settings()
    with pytest.raises(SettingsError, match="storage_port: invalid literal"):
        set_value(s, "storage_port", "eleven")
    with pytest.raises(SettingsError, match="must not hold a password"):
        set_value(s, "database_url", "postgresql://u:secret@host/db")
    with pytest.raises(SettingsError, match="no PACS is configured"):
        s.node()
    set_value(s, "pacs.x.kind", "dimse")
    with pytest.raises(SettingsError, match=r"PACS node 'x': set host, ae_title"):
        s.node("x")


def test_passwords_from_env_or_private_file(dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from readerapp.settings import (
        Settings,
        SettingsError,
        credentials_path,
        pacs_password,
        save_settings,
        store_password,
    )

    assert pacs_password("main") is None
    path = store_password("pacs", "from-file", node="main")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pacs_password("main") == "from-file"
    monkeypatch.setenv("READERAPP_PACS_PASSWORD_MAIN", "from-env")
    assert pacs_password("main") == "from-env"
    store_password("database", "db-secret")
    s = Settings(database_url="postgresql+psycopg://reader@db/trial")
    save_settings(s)
    assert s.effective_database_url() == "postgresql+psycopg://reader:db-secret@db/trial"
    assert "db-secret" not in (dirs["config"] / "settings.json").read_text()
    os.chmod(credentials_path(), 0o644)
    with pytest.raises(SettingsError, match="other users may read it.*chmod 600"):
        s.effective_database_url()
    monkeypatch.setenv("READERAPP_DATABASE_URL", "sqlite:///x.sqlite")
    assert s.effective_database_url() == "sqlite:///x.sqlite"


def test_settings_commands(dirs: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    import io

    assert main(["settings", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["_effective"]["first_run"] is True and shown["readerapp_version"] == __version__
    assert main(["pacs", "add", "main", "--host", "pacs.local", "--port", "11112", "--ae", "MAIN"]) == 0
    assert main(["pacs", "add", "web", "--url", "https://pacs/dicom-web", "--user", "svc"]) == 0
    assert main(["settings", "set", "pacs.main.timeout_s", "7.5"]) == 0
    assert main(["settings", "set", "database_url", "postgresql+psycopg://reader@db/trial"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("pw-from-stdin\n"))
    assert main(["settings", "password", "--database"]) == 0
    capsys.readouterr()
    assert main(["pacs", "nodes"]) == 0
    out = capsys.readouterr().out
    assert "* main: DIMSE MAIN@pacs.local:11112" in out and "web: DICOMweb https://pacs/dicom-web as svc" in out
    assert main(["settings", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["pacs"]["main"]["timeout_s"] == 7.5
    assert shown["_effective"]["database_url"] == "postgresql+psycopg://reader:***@db/trial"
    assert main(["settings", "set", "nonsense", "1"]) == 2
    assert "unknown setting 'nonsense'" in capsys.readouterr().err
    assert main(["pacs", "echo", "nowhere"]) == 2
    assert "unknown PACS node 'nowhere' (configured: main, web)" in capsys.readouterr().err


def test_settings_show_masks_a_password_in_a_url_it_cannot_parse(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("READERAPP_DATABASE_URL", "postgresql+psycopg://reader:topsecret@db:notaport/trial")
    assert main(["settings", "show"]) == 0
    out = capsys.readouterr().out
    assert "topsecret" not in out
    assert json.loads(out)["_effective"]["database_url"] == "postgresql+psycopg://reader:***@db:notaport/trial"
