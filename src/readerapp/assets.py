"""Where the shipped files are: Qt Designer forms (``ui/``) and ``resources/`` (icons, the style
sheet, help pages, the fibrosis feature texts).

One place that works from all three layouts (no Qt here; the core uses it too):

* a source checkout: the top-level ``ui/`` and ``resources/`` folders beside ``src/``;
* an installed wheel: copied into the package as ``readerapp/_bundled/{ui,resources}`` by the
  build (``setup.py``'s build step), found through :mod:`importlib.resources`;
* a frozen PyInstaller bundle: the spec puts them at the same place under ``sys._MEIPASS``,
  which is where the frozen package lives, so the installed-wheel rule finds them.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import resources
from pathlib import Path

KINDS = ("ui", "resources")


class AssetError(FileNotFoundError):
    """A shipped file is missing (a broken install): names the file and where it was looked for."""


@cache
def root(kind: str) -> Path:
    """The folder of ``kind`` ("ui" or "resources")."""
    if kind not in KINDS:
        raise ValueError(f"unknown asset kind {kind!r}")
    tried = []
    bundled = Path(str(resources.files("readerapp"))) / "_bundled" / kind  # wheel, frozen
    tried.append(bundled)
    if bundled.is_dir():
        return bundled
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        frozen = Path(meipass) / "readerapp" / "_bundled" / kind
        tried.append(frozen)
        if frozen.is_dir():
            return frozen
    source = Path(__file__).resolve().parents[2] / kind  # src/readerapp/assets.py -> repo root
    tried.append(source)
    if source.is_dir():
        return source
    raise AssetError(f"the {kind}/ folder of ReaderApp is missing (looked in "
                     f"{', '.join(str(t) for t in tried)}); reinstall ReaderApp")


def path(kind: str, *parts: str) -> Path:
    p = root(kind).joinpath(*parts)
    if not p.exists():
        raise AssetError(f"{kind}/{'/'.join(parts)} is missing from {root(kind)}; reinstall ReaderApp")
    return p


def resource(*parts: str) -> Path:
    """A file under ``resources/`` (``resource("icons", "brush.svg")``)."""
    return path("resources", *parts)


def ui_file(name: str) -> Path:
    """A Qt Designer form under ``ui/`` (``ui_file("login.ui")``)."""
    return path("ui", name)


def read_text(*parts: str) -> str:
    return resource(*parts).read_text(encoding="utf-8")
