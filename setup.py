"""Build step only (metadata is in pyproject.toml): the top-level ``ui/`` and ``resources/``
folders go into the package as ``readerapp/_bundled/``, so wheels and installs carry them and
:mod:`readerapp.assets` finds them through importlib.resources."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUNDLED = ("ui", "resources")


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        for kind in BUNDLED:
            src = HERE / kind
            dst = Path(self.build_lib) / "readerapp" / "_bundled" / kind
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithAssets})
