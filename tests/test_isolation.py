"""No test touches the real user's home, settings or data folders (tests/conftest.py's autouse
fixture; tests/gui/test_isolation.py checks Qt's settings)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path


def _real_home() -> Path:
    return Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()


def test_home_xdg_and_data_folders_are_temporary(_isolated_user_folders):
    import platformdirs

    from readerapp import settings
    from readerapp.editing.journal import default_root

    home = _isolated_user_folders.resolve()
    assert Path.home().resolve() == home != _real_home()
    for p in (settings.config_dir(), settings.data_dir(), default_root(),
              Path(platformdirs.user_config_dir("readerapp")), Path(platformdirs.user_data_dir("readerapp"))):
        assert p.resolve().is_relative_to(home), p
    assert os.environ["XDG_CONFIG_HOME"].startswith(str(home)) or Path(
        os.environ["XDG_CONFIG_HOME"]).resolve().is_relative_to(home)
