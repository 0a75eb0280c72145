#!/usr/bin/env bash
# Set-up on a fresh Debian/Ubuntu machine: system libraries, a virtualenv in .venv, the package.
#   scripts/setup.sh          the program (GUI libraries included)
#   scripts/setup.sh --test   the program plus what the tests need (PostgreSQL, Orthanc, dicom3tools'
#                             dciodvfy for the SEG/SR checks, dev tools)
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

pkgs=(libgl1 libegl1 libosmesa6 libegl-mesa0 libgl1-mesa-dri libxkbcommon-x11-0 libxcb-cursor0
      libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-xinerama0 libxcb-randr0
      libxcb-shape0 libxcb-xkb1 libfontconfig1 libdbus-1-3 python3-venv
      libxi6 libxext6 libxrender1 libx11-6 libx11-xcb1 libxcb1 libxcb-xfixes0 libxcb-shm0
      libxcb-sync1 libxcb-render0 libfreetype6 libglx-mesa0 libxkbcommon0)
if [ "$mode" = "--test" ]; then
  pkgs+=(postgresql orthanc orthanc-dicomweb dicom3tools dpkg-dev util-linux)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
if [ "$mode" = "--test" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,packaging]"
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi
