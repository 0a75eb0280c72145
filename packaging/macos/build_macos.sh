#!/usr/bin/env bash
# Build ReaderApp.app (and a .dmg) on macOS 11+ from the shared PyInstaller spec.
#   packaging/macos/build_macos.sh                     # unsigned, for testing
#   SIGN_ID="Developer ID Application: Site (TEAMID)" NOTARY_PROFILE=readerapp packaging/macos/build_macos.sh
# Needs: Python 3.11 (arm64 for Apple silicon, x86_64 for Intel: build on each), ReaderApp
# installed (pip install -e .[packaging]); for signing, Xcode command line tools and a Developer ID.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
export READERAPP_VERSION="$(PYTHONPATH=src "$PYTHON" -c 'import readerapp; print(readerapp.__version__)')"

if [[ ! -f packaging/resources/readerapp.icns && -x "$(command -v rsvg-convert || true)" ]]; then
    ICONSET="$(mktemp -d)/readerapp.iconset"; mkdir -p "$ICONSET"
    for s in 16 32 128 256 512; do
        rsvg-convert -w $s -h $s packaging/resources/readerapp.svg -o "$ICONSET/icon_${s}x${s}.png"
        rsvg-convert -w $((2*s)) -h $((2*s)) packaging/resources/readerapp.svg -o "$ICONSET/icon_${s}x${s}@2x.png"
    done
    iconutil -c icns "$ICONSET" -o packaging/resources/readerapp.icns
fi

"$PYTHON" -m PyInstaller --noconfirm --clean --distpath dist/pyinstaller --workpath dist/build packaging/readerapp.spec
APP="dist/pyinstaller/ReaderApp.app"
[[ -d "$APP" ]] || { echo "no $APP" >&2; exit 1; }
"$APP/Contents/MacOS/readerapp" --version

if [[ -n "${SIGN_ID:-}" ]]; then
    codesign --force --deep --timestamp --options runtime \
        --entitlements "$HERE/entitlements.plist" --sign "$SIGN_ID" "$APP"
    codesign --verify --deep --strict --verbose=2 "$APP"
fi
DMG="dist/ReaderApp-$READERAPP_VERSION.dmg"
rm -f "$DMG"
hdiutil create -volname ReaderApp -srcfolder "$APP" -ov -format UDZO "$DMG"
if [[ -n "${SIGN_ID:-}" ]]; then
    codesign --timestamp --sign "$SIGN_ID" "$DMG"
fi
if [[ -n "${NOTARY_PROFILE:-}" ]]; then
    xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$DMG"
    xcrun stapler staple "$APP"
fi
echo "$DMG"
