#!/usr/bin/env bash
# Install the unpacked GCL Studio folder for the current user: a menu entry, an icon, `gcl-studio` on PATH.
# Run from inside the unpacked folder:  ./install.sh      (remove: ./install.sh --uninstall)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
BIN="$HOME/.local/bin"
if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$DATA/applications/gcl-studio.desktop" "$DATA/icons/hicolor/scalable/apps/gcl-studio.svg" \
        "$DATA/icons/hicolor/256x256/apps/gcl-studio.png" "$BIN/gcl-studio"
  echo "GCL Studio's menu entry and launcher removed (the folder $HERE is left as it is)"; exit 0
fi
mkdir -p "$DATA/applications" "$DATA/icons/hicolor/scalable/apps" "$DATA/icons/hicolor/256x256/apps" "$BIN"
install -m 644 "$HERE/gcl-studio.svg" "$DATA/icons/hicolor/scalable/apps/gcl-studio.svg"
install -m 644 "$HERE/gcl-studio.png" "$DATA/icons/hicolor/256x256/apps/gcl-studio.png"
sed "s|^Exec=.*|Exec=\"$HERE/gcl-studio\" %F|" "$HERE/gcl-studio.desktop" > "$DATA/applications/gcl-studio.desktop"
ln -sf "$HERE/gcl-studio" "$BIN/gcl-studio"
command -v update-desktop-database >/dev/null && update-desktop-database "$DATA/applications" || true
echo "installed: GCL Studio is in the applications menu; \`gcl-studio\` runs it from a terminal"
