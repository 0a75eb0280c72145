"""The domain core must run headless: no module outside readerapp.gui may import Qt or VTK."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "readerapp"
FORBIDDEN = ("PySide6", "vtk", "vtkmodules", "shiboken6")


def core_modules() -> list[Path]:
    # Alembic migration scripts run inside Alembic, not as importable modules.
    return [
        p for p in SRC.rglob("*.py")
        if "gui" not in p.relative_to(SRC).parts and "migrations" not in p.relative_to(SRC).parts
    ]


def test_core_sources_import_no_qt_or_vtk():
    offenders = []
    for path in core_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(SRC)}: {n}")
    assert not offenders, offenders


def test_importing_every_core_module_loads_no_qt_or_vtk():
    mods = []
    for path in core_modules():
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.append(".".join(parts))
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'vtk', 'vtkmodules', 'shiboken6')]\n"
        "assert not bad, bad\n"
        "import readerapp.cli\n"
        "readerapp.cli.build_parser()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'vtk', 'vtkmodules', 'shiboken6')]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": str(SRC.parent), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
