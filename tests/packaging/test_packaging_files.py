"""Cheap checks of the installer scripts that run everywhere (the real build is test_installer.py)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "packaging"


@pytest.mark.parametrize("script", ["build_linux.sh", "macos/build_macos.sh"])
def test_shell_scripts_parse(script: str) -> None:
    r = subprocess.run(["bash", "-n", str(PKG / script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_spec_compiles_and_collects_what_has_no_hook() -> None:
    text = (PKG / "readerapp.spec").read_text()
    compile(text, "readerapp.spec", "exec")
    for needle in ('collect_dynamic_libs("SimpleITK")', 'collect_submodules("readerapp")',
                   '"pylibjpeg-libjpeg"', '"pylibjpeg-openjpeg"', "include_py_files=True"):
        assert needle in text


def test_linux_package_declares_system_libraries() -> None:
    text = (PKG / "build_linux.sh").read_text()
    depends = re.search(r'DEPENDS="([^"]+)"', text, re.S)
    assert depends
    names = {a.strip().split(" ")[0] for d in depends.group(1).replace("\\\n", "").split(",") for a in d.split("|")}
    assert {"libgl1", "libegl1", "libosmesa6", "libxkbcommon-x11-0", "libxcb-cursor0"} <= names
    assert "/opt/readerapp" in text and "/usr/bin/readerapp" in text


def test_desktop_entry() -> None:
    path = PKG / "resources" / "readerapp.desktop"
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(path)
    entry = cp["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Exec"].startswith("readerapp ")
    assert entry["Icon"] == "readerapp" and (PKG / "resources" / "readerapp.svg").is_file()
    if shutil.which("desktop-file-validate"):
        r = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_windows_and_macos_scripts_agree_with_the_spec() -> None:
    iss = (PKG / "windows" / "readerapp.iss").read_text()
    ps1 = (PKG / "windows" / "build_windows.ps1").read_text()
    assert r'dist\pyinstaller\readerapp' in iss and r"--distpath dist\pyinstaller" in ps1
    assert "readerapp.iss" in ps1 and "AppVersion" in iss
    mac = (PKG / "macos" / "build_macos.sh").read_text()
    assert "notarytool" in mac and "entitlements.plist" in mac and (PKG / "macos" / "entitlements.plist").is_file()
    spec = (PKG / "readerapp.spec").read_text()
    assert 'name="ReaderApp.app"' in spec
