"""Choosing the array backend: NumPy always, CuPy where a CUDA GPU is really usable.

Importing this module never imports CuPy; ``cupy_available`` tries once and remembers, so a
machine without a GPU (CI) pays nothing and gets a clear reason when CuPy is asked for.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Literal

from .errors import BackendUnavailableError

BackendName = Literal["numpy", "cupy"]
BACKEND_CHOICES = ("auto", "numpy", "cupy")


@functools.lru_cache(maxsize=1)
def cupy_status() -> tuple[bool, str]:
    """(usable, reason). Usable means CuPy imports, sees a device and can run a kernel."""
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or a broken CUDA install raising anything
        return False, f"CuPy is not installed ({exc.__class__.__name__}); install readerapp[gpu]"
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return False, "CuPy sees no CUDA device"
        (cupy.arange(4) + 1).sum().item()  # a real kernel launch, not just an import
    except Exception as exc:
        return False, f"CuPy cannot use a GPU here: {exc}"
    return True, "CuPy with a CUDA device"


def cupy_available() -> bool:
    return cupy_status()[0]


def resolve_backend(name: str = "auto") -> BackendName:
    """Map 'auto' to the fastest usable backend; refuse 'cupy' clearly where it cannot run."""
    if name not in BACKEND_CHOICES:
        raise BackendUnavailableError(
            f"unknown backend {name!r}: choose one of {', '.join(BACKEND_CHOICES)}"
        )
    if name == "numpy":
        return "numpy"
    ok, reason = cupy_status()
    if name == "cupy" and not ok:
        raise BackendUnavailableError(f"backend 'cupy' asked for, but {reason}; use --backend numpy")
    return "cupy" if ok else "numpy"


def array_module(name: BackendName) -> ModuleType:
    """The NumPy-compatible module for a resolved backend name."""
    if name == "cupy":
        import cupy

        return cupy
    import numpy

    return numpy


def ndimage_module(name: BackendName) -> ModuleType:
    """``scipy.ndimage`` or its CuPy mirror ``cupyx.scipy.ndimage``."""
    if name == "cupy":
        import cupyx.scipy.ndimage as ndi

        return ndi
    import scipy.ndimage as ndi

    return ndi


def to_numpy(a):  # type: ignore[no-untyped-def]
    """Bring an array from either backend to host memory (no copy for NumPy input)."""
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return a
