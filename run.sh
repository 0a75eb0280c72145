#!/usr/bin/env bash
# Install (first time) and run ReaderApp: ./run.sh [readerapp arguments]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/scripts/setup.sh" >&2
exec "$here/.venv/bin/readerapp" "$@"
