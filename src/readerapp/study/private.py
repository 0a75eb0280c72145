"""Files that hold identities or the study itself, readable by their owner only.

The local SQLite study (database, storage folders, reads) and every export that can unblind
(the case link table, the audit trail, the endpoint export) are created mode 0600 (files) and
0700 (folders). On a one-machine study this keeps other OS accounts out; it protects nothing from
someone who has the account that runs the study (docs/STUDY.md says so plainly).

CSV cells written here cannot run as spreadsheet formulas: a text cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return gets a leading single quote (OWASP, "CSV injection"),
while numbers, negative ones included, stay numbers.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

FILE_MODE = 0o600
DIR_MODE = 0o700
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders made inside are group- and world-unreadable (umask 077)."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` (and missing parents) a folder only its owner can enter."""
    p = Path(path)
    with private_umask():
        p.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(p, DIR_MODE)
    return p


def restrict(path: str | os.PathLike[str]) -> None:
    """Owner-only mode on an existing file or folder (no-op where chmod is unsupported)."""
    with contextlib.suppress(OSError):
        os.chmod(path, DIR_MODE if Path(path).is_dir() else FILE_MODE)


def open_private(path: str | os.PathLike[str], mode: str = "w", **kw: Any) -> Any:
    """``open`` for writing, but the file is created (or truncated) with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, FILE_MODE)  # an existing file keeps its mode through O_TRUNC otherwise
    return os.fdopen(fd, mode, **kw)


def write_private_text(path: str | os.PathLike[str], text: str) -> Path:
    with open_private(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def anchor_path(path: str | os.PathLike[str]) -> Path:
    """The signed anchor written beside an export file: ``FILE.anchor.txt``."""
    p = Path(path)
    return p.with_name(p.name + ".anchor.txt")


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never evaluates (numbers stay numbers)."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def write_csv(path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[Any]],
              *, lineterminator: str = "\r\n") -> int:
    """A private (0600) CSV with safe cells; returns the number of data rows."""
    n = 0
    with open_private(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator=lineterminator)
        w.writerow([csv_cell(h) for h in header])
        for row in rows:
            w.writerow([csv_cell(v) for v in row])
            n += 1
    return n
