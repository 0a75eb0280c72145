#!/usr/bin/env bash
# Install (first time) everything the tests need and run them: ./test.sh [pytest arguments]
# Tests that need a server (PostgreSQL, Orthanc) start and stop their own throwaway instance.
#
# With no test paths given, the suite runs in two processes: everything without Qt/VTK, then the
# window tests (marker "gui"). Mesa's software OpenGL (OSMesa) has crashed a window-test process
# natively, rarely and not reproducibly; a window-test process killed by a signal is therefore run
# once more, loudly. An ordinary test failure is never retried.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
scripts/setup.sh --test
unset DISPLAY
export QT_QPA_PLATFORM=offscreen
export VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$here/.venv/numba-cache}"
py=.venv/bin/python

for a in "$@"; do  # paths, node ids or a selection of one's own: one plain run
  case "$a" in -m|-k|-m*|-k*) exec "$py" -m pytest "$@" ;; -*) ;; *) exec "$py" -m pytest "$@" ;; esac
done

"$py" -m pytest -m "not gui" "$@"
rc=0
"$py" -X faulthandler -m pytest -m gui "$@" || rc=$?
if [ "$rc" -gt 128 ]; then
  echo "test.sh: the window-test process was killed by signal $((rc - 128)) (a native crash); running it once more" >&2
  rc=0
  "$py" -X faulthandler -m pytest -m gui "$@" || rc=$?
fi
exit "$rc"
