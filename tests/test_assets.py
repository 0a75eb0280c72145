"""The shipped ui/ and resources/ folders: found from a source checkout, from the package as a
wheel installs it (setup.py's build step), and named in the PyInstaller spec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from readerapp import assets
from readerapp.forms import FormError, load_fibrosis_features

ROOT = Path(__file__).resolve().parents[1]
UI = ("login.ui", "signature.ui", "firstrun.ui", "settings.ui", "pacs_browser.ui")
RESOURCES = ("style.qss", "fibrosis_features.json", "help/index.html", "help/display.html",
             "icons/brush.svg", "icons/readerapp.svg")


def test_source_checkout_finds_the_top_level_folders():
    assert assets.root("ui") in (ROOT / "ui", ROOT / "src" / "readerapp" / "_bundled" / "ui")
    for name in UI:
        assert assets.ui_file(name).is_file()
    for rel in RESOURCES:
        assert assets.resource(*rel.split("/")).is_file()
    with pytest.raises(assets.AssetError, match="missing"):
        assets.resource("no-such-file.txt")


def test_the_wheel_build_puts_them_in_the_package_and_importlib_finds_them(tmp_path):
    """setup.py's build_py is the step that fills a wheel (pip wheel / pip install . run it)."""
    lib = tmp_path / "lib"
    (tmp_path / "egg").mkdir()
    r = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path / "egg"),
                        "build_py", "--build-lib", str(lib)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    code = ("import json, importlib.resources as ir; from readerapp import assets, forms; "
            "print(json.dumps({'ui': str(assets.root('ui')), 'res': str(assets.root('resources')), "
            "'files': sorted(p.name for p in (ir.files('readerapp') / '_bundled' / 'ui').iterdir()), "
            "'features': len(forms.FIBROSIS_FEATURES)}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(lib), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert got["ui"] == str(lib / "readerapp" / "_bundled" / "ui")
    assert got["res"] == str(lib / "readerapp" / "_bundled" / "resources")
    assert set(UI) <= set(got["files"]) and got["features"] == 5
    for rel in RESOURCES:
        assert (lib / "readerapp" / "_bundled" / "resources" / rel).is_file()


def test_installer_spec_and_sdist_carry_them():
    spec = (ROOT / "packaging" / "readerapp.spec").read_text()
    assert '"readerapp/_bundled/ui"' in spec and '"readerapp/_bundled/resources"' in spec
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "graft ui" in manifest and "graft resources" in manifest


def test_a_study_replaces_the_fibrosis_texts_but_not_the_features(tmp_path, monkeypatch):
    base = json.loads(assets.read_text("fibrosis_features.json"))
    base["features"][4]["definition"] = "Charter text: at least 5 mm."
    f = tmp_path / "charter.json"
    f.write_text(json.dumps(base))
    feats = load_fibrosis_features(f)
    assert feats[4].definition == "Charter text: at least 5 mm."
    monkeypatch.setenv("READERAPP_FIBROSIS_TEXTS", str(f))
    assert load_fibrosis_features()[4].definition.startswith("Charter text")
    base["features"] = base["features"][:4]
    f.write_text(json.dumps(base))
    with pytest.raises(FormError, match="must be"):
        load_fibrosis_features(f)


def test_a_frozen_bundle_is_found_under_meipass(tmp_path, monkeypatch):
    """PyInstaller: the spec's datas land in sys._MEIPASS/readerapp/_bundled/."""
    import importlib.resources

    bundle = tmp_path / "readerapp" / "_bundled"
    (bundle / "ui").mkdir(parents=True)
    (bundle / "ui" / "login.ui").write_text("<ui/>")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setattr(importlib.resources, "files", lambda pkg: tmp_path / "nowhere")
    assets.root.cache_clear()
    try:
        assert assets.ui_file("login.ui") == bundle / "ui" / "login.ui"
    finally:
        assets.root.cache_clear()
