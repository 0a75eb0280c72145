"""Atomic writes: a writer that fails midway leaves the previous file whole and no debris."""

from __future__ import annotations

import pytest

from readerapp.fileio import atomic_write, atomic_write_json, sha256_file


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "read.json"
    atomic_write_json(target, {"v": 1})
    before = sha256_file(target)

    def broken(p):
        p.write_text('{"v": 2, "trunc')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert sha256_file(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["read.json"]


def test_json_is_strict(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"v": float("nan")})
    assert not (tmp_path / "x.json").exists()
