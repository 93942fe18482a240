#!/usr/bin/env bash
# Issue 17's GPU checks (items 2 and 3) for one lease, each stage under its own time limit:
#   1. onnxruntime's CUDA provider against torch CUDA: inference_speed.py --device cuda (predict and network-only
#      speed of both backends, and the share of voxels where their labels agree). Needs onnxruntime-gpu instead of
#      onnxruntime: ORT_GPU_WHEEL=/path/onnxruntime_gpu-*.whl is installed first when given (the device machine has
#      no network); without it the onnxruntime rows say CPUExecutionProvider and the check is not made.
#   2. the GCL step: pretrain_speed.py on CUDA at 128 and 224 px (fast and exact mitigator, naive sum, SimCLR),
#      the ratio fast / naive_sum against the spec's 1.2x.
#   3. the clinical CT (inference_clinical.py) on the CPU of that machine, for a second machine's figures.
# Usage: bash benchmarks/gpu_session_i17.sh OUT_DIR
# Needs GCL_BENCH_DATA (benchmarks/fetch_data.sh) and PYTHON with torch (CUDA build), SimpleITK, monai, onnx.
set -u
OUT=${1:?usage: gpu_session_i17.sh OUT_DIR}
PY=${PYTHON:-python3}
mkdir -p "$OUT/results"
LOG="$OUT/session.log"
export PYTHONUNBUFFERED=1
stage() { echo "=== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }

stage environment
if [ -n "${ORT_GPU_WHEEL:-}" ]; then
  "$PY" -m pip uninstall -y onnxruntime >>"$LOG" 2>&1
  "$PY" -m pip install --no-deps "$ORT_GPU_WHEEL" >>"$LOG" 2>&1
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  nproc; git rev-parse --short HEAD 2>/dev/null
  "$PY" -c 'import torch, onnxruntime as ort
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "onnxruntime", ort.__version__,
      ort.get_available_providers())'
} >>"$LOG" 2>&1

stage "onnxruntime CUDA provider against torch CUDA"
timeout -k 5 240 "$PY" benchmarks/inference_speed.py --device cuda --sizes 128,224 --repeats 3 \
    --results "$OUT/results" --nice 0 >>"$LOG" 2>&1
echo "exit $?" >>"$LOG"

stage "GCL step on CUDA (fast mitigator / naive sum)"
timeout -k 5 240 "$PY" benchmarks/pretrain_speed.py --device cuda --sizes 128,224 --base-channels 32 \
    --volumes-per-batch 8 --rounds 3 --data-steps 10 --cos-batches 1 --no-memory --tag cuda \
    --results "$OUT/results" --nice 0 >>"$LOG" 2>&1
echo "exit $?" >>"$LOG"

stage "clinical CT on this machine's CPU"
timeout -k 5 240 "$PY" benchmarks/inference_clinical.py --results "$OUT/results" --nice 0 >>"$LOG" 2>&1
echo "exit $?" >>"$LOG"
stage done
