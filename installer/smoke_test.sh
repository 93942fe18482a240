#!/usr/bin/env bash
# Run the built app's self-test under Xvfb: sample project, two-step fine-tune in the frozen training
# child, NIfTI export read back with the source geometry. Exit status is the self-test's.
#
#   bash installer/smoke_test.sh [path/to/gcl-studio] [--screenshots DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP="${1:-$ROOT/dist/gcl-studio/gcl-studio}"
shift || true
[ -x "$APP" ] || { echo "no built app at $APP: run make bundle first" >&2; exit 2; }
RUN=()
if [ -z "${DISPLAY:-}" ]; then
  command -v xvfb-run >/dev/null || { echo "no display and no xvfb-run (apt-get install xvfb)" >&2; exit 2; }
  RUN=(xvfb-run -a -s "-screen 0 1600x1000x24")
fi
# a fresh config folder: the check must not see (or leave) the user's recent projects or crash locks
export GCL_STUDIO_CONFIG_DIR="$(mktemp -d)"
trap 'rm -rf "$GCL_STUDIO_CONFIG_DIR"' EXIT
start=$(date +%s%3N)
status=0
"${RUN[@]}" "$APP" --self-test "$@" || status=$?
elapsed=$(( $(date +%s%3N) - start ))
echo "smoke test: exit $status after $((elapsed / 1000)).$(printf '%03d' $((elapsed % 1000))) s (wall clock, Xvfb start included)"
[ "$status" = 0 ] || exit $status

# The frozen engine's CLI (what training children run): a tiny fine-tune on the bundled CT, then a DICOM SEG of
# the bundled oblique DICOM MR, which needs highdicom's and pydicom's data files inside the bundle.
WORK="$(mktemp -d)"
trap 'rm -rf "$GCL_STUDIO_CONFIG_DIR" "$WORK"' EXIT
DATA="$(dirname "$APP")/_internal/gcl_resources/sample_data"
TINY=(--size 32 --base-channels 4 --device cpu --steps 2)
"$APP" -m gcl_engine.cli finetune --image "$DATA/scans/example_ct_sm.nii.gz" \
  --labels "$DATA/labels/example_seg.nii.gz" --slices 10,15 --out "$WORK/model.pt" "${TINY[@]}" >/dev/null
"$APP" -m gcl_engine.cli predict --model "$WORK/model.pt" --image "$DATA/scans/oblique_brain_dicom" \
  --out "$WORK/oblique_seg.dcm" 2>/dev/null
[ -s "$WORK/oblique_seg.dcm" ] || { echo "smoke test: no DICOM SEG written by the frozen CLI" >&2; exit 1; }
echo "smoke test: the frozen CLI wrote a DICOM SEG ($(stat -c %s "$WORK/oblique_seg.dcm") bytes)"
