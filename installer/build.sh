#!/usr/bin/env bash
# Build the one-folder GCL Studio app with PyInstaller, from a lean environment, and pack it as a tar.gz.
#
#   bash installer/build.sh          (what `make bundle` runs)
#
# PyInstaller takes in everything importable it finds, so the build runs in its own venv holding only
# the app's run-time packages (installer/requirements-bundle.txt) plus PyInstaller, never the dev venv.
# Settings (environment variables):
#   PY           Python used for the build venv (default python3; the bundle embeds this interpreter)
#   BUILD_VENV   where the build venv lives (default build/bundle-venv; reused while its inputs match)
#   TORCH_SPEC   default torch==2.13.0 (the CPU wheel on this machine); TORCH_INDEX: a PyTorch wheel index
#                for a CUDA build, e.g. https://download.pytorch.org/whl/cu128 (see installer/README.md)
#   ORT_SPEC     default onnxruntime==1.31.1 (CPU); onnxruntime-gpu==1.31.1 for a CUDA build
#   NO_TAR=1     skip the tar.gz (saves a minute or two when only testing the build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-python3}"
BUILD_VENV="${BUILD_VENV:-$ROOT/build/bundle-venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
TORCH_INDEX="${TORCH_INDEX:-}"
ORT_SPEC="${ORT_SPEC:-onnxruntime==1.31.1}"
DIST="$ROOT/dist"
APP="$DIST/gcl-studio"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' gcl_engine/__init__.py)"  # the one source of the version
PACKAGE="$DIST/gcl-studio-$VERSION-linux-$(uname -m).tar.gz"
PIP="$BUILD_VENV/bin/python -m pip"
t0=$(date +%s)

inputs() { cksum < installer/requirements-bundle.txt; echo "$TORCH_SPEC $TORCH_INDEX $ORT_SPEC $("$PY" -V 2>&1)"; }
if [ ! -x "$BUILD_VENV/bin/python" ] || [ "$(cat "$BUILD_VENV/.bundle-inputs" 2>/dev/null)" != "$(inputs)" ]; then
  echo "== creating the lean build environment in $BUILD_VENV"
  rm -rf "$BUILD_VENV"
  "$PY" -m venv "$BUILD_VENV"
  $PIP install -q --upgrade pip
  if [ -n "$TORCH_INDEX" ]; then $PIP install -q "$TORCH_SPEC" --index-url "$TORCH_INDEX"
  else $PIP install -q "$TORCH_SPEC"; fi
  $PIP install -q "$ORT_SPEC" -r installer/requirements-bundle.txt
  inputs > "$BUILD_VENV/.bundle-inputs"
  rm -rf "$ROOT/build/pyinstaller"  # PyInstaller's analysis cache belongs to the old environment
fi
echo "== installing gcl-studio into the build environment (a real install: PyInstaller needs its files)"
$PIP install -q --no-deps --force-reinstall "$ROOT"
t1=$(date +%s)

echo "== PyInstaller (one folder)"
rm -f "$PACKAGE"  # never leave an older package beside a new build
# no --clean: PyInstaller's cache in build/pyinstaller (checked against file times) makes a rebuild minutes shorter
"$BUILD_VENV/bin/pyinstaller" --noconfirm --log-level WARN \
  --distpath "$DIST" --workpath "$ROOT/build/pyinstaller" installer/gcl_studio.spec
install -m 644 installer/linux/gcl-studio.desktop resources/icons/gcl-studio.png resources/icons/gcl-studio.svg "$APP/"
install -m 755 installer/linux/install.sh "$APP/install.sh"
t2=$(date +%s)

if [ "${NO_TAR:-0}" != "1" ]; then
  echo "== packing $PACKAGE"
  if command -v pigz >/dev/null 2>&1; then tar -C "$DIST" -cf - gcl-studio | pigz > "$PACKAGE"
  else tar -C "$DIST" -czf "$PACKAGE" gcl-studio; fi
fi
t3=$(date +%s)

echo "== done"
echo "build environment + install: $((t1 - t0)) s; PyInstaller: $((t2 - t1)) s; tar.gz: $((t3 - t2)) s; total: $((t3 - t0)) s"
echo "bundle: $APP ($(du -sh "$APP" | cut -f1), $(find "$APP" -type f | wc -l) files)"
[ -f "$PACKAGE" ] && echo "package: $PACKAGE ($(du -sh "$PACKAGE" | cut -f1))"
echo "check it: bash installer/smoke_test.sh"
