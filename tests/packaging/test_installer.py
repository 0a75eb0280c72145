"""Build the Linux installer, install it into the system, run the installed program headless on the
real chest CT (analyze, and a screenshot of the window), and remove it again.

Runs only where asked (``READERAPP_TEST_PACKAGING=1``, set by CI's test.sh), as root, with
dpkg-deb: it installs a system package. The build takes a minute or two and over 1 GB of disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from readerapp import __version__

pytestmark = [pytest.mark.packaging, pytest.mark.slow, pytest.mark.realdata, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
REQUIRED_DEPENDS = ("libgl1", "libegl1", "libosmesa6", "libxkbcommon-x11-0", "libxcb-cursor0", "libfontconfig1")


def _why_not() -> str | None:
    if os.environ.get("READERAPP_TEST_PACKAGING") != "1":
        return "installer test not requested (set READERAPP_TEST_PACKAGING=1; it installs a system package)"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "installing a .deb with dpkg -i needs root"
    for tool in ("dpkg-deb", "dpkg"):
        if shutil.which(tool) is None:
            return f"{tool} is not available (not a Debian-like system)"
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        return "PyInstaller is not installed (pip install readerapp[packaging])"
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "readerapp"], capture_output=True, text=True)
    if "install ok installed" in status.stdout:
        return "a readerapp package is already installed here; not replacing it"
    return None


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("installer")
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "LEVEL": os.environ.get("READERAPP_DEB_LEVEL", "1")}
    installed_here = False
    try:
        t0 = time.perf_counter()
        build = subprocess.run(["bash", str(REPO / "packaging" / "build_linux.sh")], env=env,
                               capture_output=True, text=True, timeout=480)
        build_s = time.perf_counter() - t0
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
        debs = sorted(out.glob("readerapp_*.deb"))
        assert len(debs) == 1, build.stdout[-2000:]
        deb = debs[0]
        missing = _missing_depends(deb)
        assert not missing, f"the package's Depends are not installed here (add them to scripts/setup.sh): {missing}"
        t1 = time.perf_counter()
        installed_here = True
        inst = subprocess.run(["dpkg", "-i", str(deb)], capture_output=True, text=True, timeout=300)
        install_s = time.perf_counter() - t1
        assert inst.returncode == 0, inst.stdout + inst.stderr
        figures = {"build_s": round(build_s, 1), "install_s": round(install_s, 1),
                   "deb_mb": round(deb.stat().st_size / 1e6, 1), "build_log": build.stdout.strip().splitlines()[-3:]}
        print("\ninstaller figures:", json.dumps(figures))
        yield deb, out, figures
    finally:
        if installed_here:
            subprocess.run(["dpkg", "--purge", "readerapp"], capture_output=True, text=True, timeout=300)
        for sub in ("pyinstaller", "build", "deb"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for deb_file in out.glob("*.deb"):
            deb_file.unlink()


def _missing_depends(deb: Path) -> list[str]:
    """Depends entries (with their alternatives) of which no package is installed here."""
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True).stdout

    def installed(name: str) -> bool:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
        return "install ok installed" in r.stdout

    entries = [d.strip() for d in depends.split(",") if d.strip()]
    return [e for e in entries if not any(installed(a.strip().split(" ")[0]) for a in e.split("|"))]

def _run(args: list[str], home: Path, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("READERAPP_", "PYTHON", "QT_", "VTK_"))}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"))
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=home)


def test_package_contents_and_depends(installed) -> None:  # type: ignore[no-untyped-def]
    deb, _out, _fig = installed
    info = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends", "Version", "Package"],
                          capture_output=True, text=True, check=True).stdout
    depends_line = next(line for line in info.splitlines() if line.startswith("Depends:"))
    names = {alt.strip().split(" ")[0] for dep in depends_line[8:].split(",") for alt in dep.split("|")}
    assert set(REQUIRED_DEPENDS) <= names, set(REQUIRED_DEPENDS) - names
    assert f"Version: {__version__}" in info
    assert Path("/opt/readerapp/readerapp").is_file() and os.access("/usr/bin/readerapp", os.X_OK)
    desktop = Path("/usr/share/applications/readerapp.desktop").read_text()
    assert "Exec=readerapp" in desktop and "Icon=readerapp" in desktop
    assert Path("/usr/share/icons/hicolor/scalable/apps/readerapp.svg").is_file()
    sitk = list(Path("/opt/readerapp").rglob("_SimpleITK*.so"))
    assert sitk, "SimpleITK's shared library was not collected"


def test_installed_program_runs_headless_on_real_ct(installed, chest_ct_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = _run(["readerapp", "--version"], tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"readerapp {__version__}", r.stderr
    assert shutil.which("readerapp") == "/usr/bin/readerapp"

    # first start on a bare account: embedded defaults, settings where the platform expects them
    r = _run(["readerapp", "settings", "show"], tmp_path)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["_effective"]["first_run"] is True
    assert shown["_effective"]["database_url"].startswith(f"sqlite:///{tmp_path}/.local/share/ReaderApp/")

    out_json = tmp_path / "chest.json"
    t0 = time.perf_counter()
    r = _run(["readerapp", "analyze", str(chest_ct_dir), "--json", str(out_json), "--quiet"], tmp_path)
    analyze_s = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out_json.read_text())
    assert result["software_version"] == __version__
    assert 2000 < result["lung_volume_ml"] < 9000

    shot = tmp_path / "window.png"
    t1 = time.perf_counter()
    r = _run(["readerapp", "view", str(chest_ct_dir), "--screenshot", str(shot), "--size", "1200x800"], tmp_path)
    view_s = time.perf_counter() - t1
    assert r.returncode == 0, r.stderr[-3000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a rendered window, not a blank one
    print(f"\ninstalled program: analyze {analyze_s:.1f} s, screenshot {view_s:.1f} s")
