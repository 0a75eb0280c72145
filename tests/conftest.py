"""Shared fixtures: where the real data lives, and the synthetic phantoms.

Real chest CT is found at ``$READERAPP_SHARED_DATA`` or ``../shared/data`` beside the checkout;
tests that need it skip with the reason where it is absent, so a fresh clone still passes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
