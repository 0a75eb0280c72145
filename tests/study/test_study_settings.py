"""The study commands find their database in the program's settings (what the first-run dialog or
``readerapp settings`` wrote), and fall back to the local SQLite study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from studykit import PASSWORDS, cli


@pytest.fixture
def config_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private settings, site and data folders; nothing from the environment leaks in."""
    monkeypatch.setenv("READERAPP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("READERAPP_SITE_CONFIG_DIR", str(tmp_path / "site-config"))
    monkeypatch.setenv("READERAPP_DATA_DIR", str(tmp_path / "data"))
    for var in ("READERAPP_DATABASE_URL", "READERAPP_STUDY_STORAGE", "READERAPP_DATABASE_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "config"


def _config(tmp_path: Path) -> str:
    cfg = tmp_path / "study.json"
    cfg.write_text(json.dumps({"name": "from settings"}), encoding="utf-8")
    return str(cfg)


def test_without_settings_the_study_is_local_sqlite_in_the_data_folder(tmp_path: Path, config_dirs: Path) -> None:
    from readerapp.commands.study import study_location

    db, storage = study_location(None, None)
    assert db == "sqlite:///" + (tmp_path / "data" / "study" / "study.sqlite").as_posix() and storage is None
    rc, out, err = cli(["study", "create", _config(tmp_path)])
    assert rc == 0, err
    assert (tmp_path / "data" / "study" / "study.sqlite").is_file()
    assert str(tmp_path / "data" / "study" / "study_files") in out
    assert not config_dirs.exists()  # nothing was written to the settings


def test_study_commands_use_the_sites_postgresql_from_the_settings(tmp_path: Path, config_dirs: Path,
                                                                   pg_url: str) -> None:
    from readerapp.commands.study import study_location
    from readerapp.study.service import StudyService

    share = tmp_path / "share"
    config_dirs.mkdir()
    (config_dirs / "settings.json").write_text(
        json.dumps({"database_url": pg_url, "study_storage": str(share)}), encoding="utf-8")
    assert study_location(None, None) == (pg_url, str(share))
    rc, out, err = cli(["study", "create", _config(tmp_path)])
    assert rc == 0, err
    rc, out, err = cli(["user", "add", "--name", "admin", "--role", "admin"], PASSWORDS["admin"] + "\n")
    assert rc == 0, err
    rc, out, err = cli(["user", "add", "--name", "r1", "--role", "reader"],
                       f"{PASSWORDS['reader_a']}\n{PASSWORDS['admin']}\n")
    assert rc == 0, err
    assert not (tmp_path / "data" / "study").exists()  # the local default was not touched
    svc = StudyService(pg_url, share)
    assert svc.config.name == "from settings"
    admin = svc.login("admin", PASSWORDS["admin"])
    assert [u[0] for u in svc.users(admin)] == ["admin", "r1"]
    assert share.is_dir()
    rc, out, err = cli(["audit", "verify"])
    assert rc == 0 and "intact" in out, out + err

    # --db names another study: the settings' shared folder is not applied to it
    other = tmp_path / "other.sqlite"
    assert study_location(str(other), None) == (str(other), None)
    rc, out, err = cli(["study", "create", _config(tmp_path), "--db", str(other)])
    assert rc == 0, err
    assert (tmp_path / "other_files").is_dir() and str(share) not in out
