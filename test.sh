#!/usr/bin/env bash
# Install (first time) everything the tests need and run them: ./test.sh [pytest arguments]
# Tests that need a server (PostgreSQL, Orthanc) start and stop their own throwaway instance.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
scripts/setup.sh --test
unset DISPLAY
export QT_QPA_PLATFORM=offscreen
export VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$here/.venv/numba-cache}"
exec .venv/bin/python -m pytest "$@"
