"""Shared fixtures: where the real data lives, and the synthetic phantoms.

Real chest CT is found at ``$READERAPP_SHARED_DATA`` or ``../shared/data`` beside the checkout;
tests that need it skip with the reason where it is absent, so a fresh clone still passes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Environment variables that point the program (and Qt, platformdirs) at the user's folders.
_USER_DIR_VARS = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
                  "READERAPP_CONFIG_DIR", "READERAPP_DATA_DIR", "APPDATA", "LOCALAPPDATA")


@pytest.fixture(autouse=True)
def _isolated_user_folders(tmp_path_factory, monkeypatch):
    """No test reads or writes the real user's home, settings or data folders.

    HOME, the XDG folders and ReaderApp's own overrides all point into a fresh temporary folder;
    the GUI conftest also points Qt's QSettings there. ``tests/test_isolation.py`` proves it.
    """
    home = tmp_path_factory.mktemp("home")
    for var in _USER_DIR_VARS:
        sub = {"HOME": "", "XDG_CONFIG_HOME": ".config", "XDG_DATA_HOME": ".local/share",
               "XDG_CACHE_HOME": ".cache", "XDG_STATE_HOME": ".local/state",
               "READERAPP_CONFIG_DIR": "readerapp-config", "READERAPP_DATA_DIR": "readerapp-data",
               "APPDATA": "AppData/Roaming", "LOCALAPPDATA": "AppData/Local"}[var]
        monkeypatch.setenv(var, str(home / sub) if sub else str(home))
    monkeypatch.setenv("NUMBA_CACHE_DIR", os.environ.get("NUMBA_CACHE_DIR") or str(home / ".numba"))
    if "PySide6.QtCore" in sys.modules:  # Qt caches its folders: point QSettings here too
        from PySide6 import QtCore

        for fmt in (QtCore.QSettings.Format.NativeFormat, QtCore.QSettings.Format.IniFormat):
            for scope in (QtCore.QSettings.Scope.UserScope, QtCore.QSettings.Scope.SystemScope):
                QtCore.QSettings.setPath(fmt, scope, str(home / "qsettings" / scope.name))
    yield home


def shared_data_dir() -> Path | None:
    env = os.environ.get("READERAPP_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("real CT data not found: set READERAPP_SHARED_DATA or place it at ../shared/data")
    return d


@pytest.fixture(scope="session")
def chest_ct_dir(shared_data: Path) -> Path:
    d = shared_data / "chest-ct-lung-dx-a0001"
    if not d.is_dir():
        pytest.skip(f"{d} is absent")
    return d


@pytest.fixture(scope="session")
def small_phantom():
    """A small chest phantom (80x160x160, 2x2x2.5 mm) with its true label map."""
    from readerapp.phantom import make_chest_phantom

    return make_chest_phantom()
