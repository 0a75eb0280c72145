#!/usr/bin/env bash
# Build ReaderApp for Linux: a PyInstaller one-folder bundle wrapped into a Debian package.
#
#   packaging/build_linux.sh                 # -> dist/readerapp_<version>_<arch>.deb
#   OUT=/tmp/out COMPRESS=xz packaging/build_linux.sh
#
# Environment:
#   PYTHON     the Python with ReaderApp's dependencies and PyInstaller (default: python3)
#   OUT        output folder (default: <repo>/dist)
#   COMPRESS   dpkg-deb compressor: gzip (default, ~20 s), xz (smaller, ~90 s) or none
#   LEVEL      compression level (default 6; 1 is much faster and a little larger)
#   SKIP_PYINSTALLER=1  reuse an existing bundle in $OUT/pyinstaller/readerapp
#
# The package installs the bundle to /opt/readerapp, a /usr/bin/readerapp wrapper, a desktop
# entry and an icon. The bundle carries Python, Qt, VTK and the rest; it does not carry the
# system's OpenGL/EGL/OSMesa and X/xcb libraries, which the package therefore Depends on.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PYTHON="${PYTHON:-python3}"
OUT="${OUT:-$ROOT/dist}"
COMPRESS="${COMPRESS:-gzip}"
LEVEL="${LEVEL:-6}"

VERSION="$(PYTHONPATH="$ROOT/src" "$PYTHON" -c 'import readerapp; print(readerapp.__version__)')"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
DEPENDS="libc6, libgl1, libegl1, libosmesa6, libglx-mesa0 | libglx0, libgl1-mesa-dri, libfontconfig1, \
libfreetype6, libdbus-1-3, libxkbcommon0, libxkbcommon-x11-0, libx11-6, libx11-xcb1, libxext6, \
libxrender1, libxi6, libxcb1, libxcb-cursor0, libxcb-icccm4, libxcb-image0, libxcb-keysyms1, \
libxcb-render-util0, libxcb-xinerama0, libxcb-randr0, libxcb-shape0, libxcb-xkb1, libxcb-xfixes0, \
libxcb-shm0, libxcb-sync1, libxcb-render0"

t0=$(date +%s)
if [[ "${SKIP_PYINSTALLER:-0}" != 1 ]]; then
    echo ">> PyInstaller one-folder build (readerapp $VERSION)"
    "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
        --distpath "$OUT/pyinstaller" --workpath "$OUT/build" "$HERE/readerapp.spec"
fi
BUNDLE="$OUT/pyinstaller/readerapp"
[[ -x "$BUNDLE/readerapp" ]] || { echo "no bundle at $BUNDLE" >&2; exit 1; }
# SimpleITK has no PyInstaller hook: refuse a bundle that lost its shared library.
find "$BUNDLE" -name '_SimpleITK*.so' | grep -q . || { echo "SimpleITK's library is missing from the bundle" >&2; exit 1; }
t1=$(date +%s)
echo ">> bundle: $(du -sh "$BUNDLE" | cut -f1) in $((t1 - t0)) s"

PKG="$OUT/deb/readerapp_${VERSION}_${ARCH}"
rm -rf "$PKG"
mkdir -p "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/usr/share/applications" \
         "$PKG/usr/share/icons/hicolor/scalable/apps" "$PKG/usr/share/doc/readerapp"
# hard links: no second copy of ~500 MB (falls back to a copy across file systems)
cp -al "$BUNDLE" "$PKG/opt/readerapp" 2>/dev/null || cp -a "$BUNDLE" "$PKG/opt/readerapp"
cat > "$PKG/usr/bin/readerapp" <<'WRAP'
#!/bin/sh
# ReaderApp: the bundled program in /opt/readerapp (command line and window).
exec /opt/readerapp/readerapp "$@"
WRAP
chmod 0755 "$PKG/usr/bin/readerapp"
install -m 0644 "$HERE/resources/readerapp.desktop" "$PKG/usr/share/applications/readerapp.desktop"
install -m 0644 "$HERE/resources/readerapp.svg" "$PKG/usr/share/icons/hicolor/scalable/apps/readerapp.svg"
[[ -f "$ROOT/docs/SITES.md" ]] && install -m 0644 "$ROOT/docs/SITES.md" "$PKG/usr/share/doc/readerapp/SITES.md"

SIZE_KB="$(du -sk "$PKG" | cut -f1)"
cat > "$PKG/DEBIAN/control" <<CTRL
Package: readerapp
Version: $VERSION
Section: science
Priority: optional
Architecture: $ARCH
Installed-Size: $SIZE_KB
Depends: $DEPENDS
Maintainer: ReaderApp team <readerapp@example.org>
Homepage: https://example.org/readerapp
Description: CT reader workstation for blinded clinical-trial reads
 Chest CT densitometry (lung, ground glass, consolidation), a reader workstation, a blinded
 double-reading study workflow with adjudication and audit trail, and PACS import/export
 (DICOMweb and DIMSE). Self-contained build in /opt/readerapp.
CTRL
cat > "$PKG/DEBIAN/postinst" <<'POST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q /usr/share/applications || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
fi
exit 0
POST
cat > "$PKG/DEBIAN/postrm" <<'POST'
#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q /usr/share/applications || true
fi
exit 0
POST
chmod 0755 "$PKG/DEBIAN/postinst" "$PKG/DEBIAN/postrm"

DEB="$OUT/readerapp_${VERSION}_${ARCH}.deb"
echo ">> dpkg-deb ($COMPRESS -$LEVEL)"
dpkg-deb --root-owner-group -Z"$COMPRESS" -z"$LEVEL" --build "$PKG" "$DEB" >/dev/null
t2=$(date +%s)
rm -rf "$PKG"
echo ">> $DEB: $(du -h "$DEB" | cut -f1); PyInstaller $((t1 - t0)) s, dpkg-deb $((t2 - t1)) s"
echo "$DEB"
