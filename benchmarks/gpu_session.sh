#!/usr/bin/env bash
# What one 15-minute GPU lease runs, each stage under its own time limit so that a slow or failing stage never
# costs the others. Two sessions (SESSION=...):
#   fewshot (default), in order of value:
#     1. the few-shot benchmark, configuration gpu_first_look (the issue-5 question at 128 px, 450 steps);
#     2. the demo end to end on CUDA (bf16 autocast pre-training, fine-tuning, ONNX export, onnxruntime);
#     3. the pre-training step benchmark on CUDA (fast vs exact mitigator, naive sum, SimCLR at 128 and 224 px).
#   speed (issue 17's GPU items):
#     1. onnxruntime's CUDA provider against torch CUDA (inference_speed.py --device cuda: predict and
#        network-only speed of both backends, and the share of voxels where their labels agree). Needs
#        onnxruntime-gpu: ORT_GPU_WHEEL=/path/onnxruntime_gpu-*.whl is installed first when given (the device
#        machine has no network); without it the onnxruntime rows say CPUExecutionProvider, no check is made;
#     2. the GCL step at 128 and 224 px (pretrain_speed.py), the ratio fast / naive sum against the 1.2x aim;
#     3. the clinical CT (inference_clinical.py) on that machine's CPU, for a second machine's figures.
# Usage: [SESSION=speed] bash benchmarks/gpu_session.sh OUT_DIR [FEWSHOT_SECONDS]
# Needs GCL_BENCH_DATA (benchmarks/fetch_data.sh's volumes/ and labels/) and a python with torch (CUDA build),
# SimpleITK, monai, platformdirs, onnx, onnxruntime; PYTHON picks it (default python3). FEWSHOT_EXTRA, DEMO_EXTRA,
# SPEED_EXTRA append options to the fewshot session's stages (a CPU dry run: see benchmarks/README.md).
set -u
OUT=${1:?usage: [SESSION=speed] gpu_session.sh OUT_DIR [FEWSHOT_SECONDS]}
FEWSHOT_S=${2:-330}
SESSION=${SESSION:-fewshot}
PY=${PYTHON:-python3}
mkdir -p "$OUT/results"
LOG="$OUT/session.log"
export PYTHONUNBUFFERED=1
stage() { echo "=== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }
step_speed() {  # the GCL step benchmark on CUDA: LIMIT_S, then extra options
  local limit=$1; shift
  timeout -k 5 "$limit" "$PY" benchmarks/pretrain_speed.py --device cuda --sizes 128,224 --base-channels 32 \
      --volumes-per-batch 8 --rounds 3 --data-steps 10 --cos-batches 1 --no-memory --tag cuda \
      --results "$OUT/results" --nice 0 "$@" >>"$LOG" 2>&1
  echo "exit $?" >>"$LOG"
}

stage "environment (session $SESSION)"
if [ "$SESSION" = speed ] && [ -n "${ORT_GPU_WHEEL:-}" ]; then
  "$PY" -m pip uninstall -y onnxruntime >>"$LOG" 2>&1
  "$PY" -m pip install --no-deps "$ORT_GPU_WHEEL" >>"$LOG" 2>&1
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  nproc; git rev-parse --short HEAD 2>/dev/null
  "$PY" -c 'import sys, torch, SimpleITK, monai, onnxruntime as ort
print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.version.cuda,
      "SimpleITK", SimpleITK.Version_VersionString(), "monai", monai.__version__,
      "onnxruntime", ort.__version__, ort.get_available_providers())'
} >>"$LOG" 2>&1

case "$SESSION" in
  fewshot)
    stage "few-shot benchmark (gpu_first_look, ${FEWSHOT_S} s at most)"
    timeout -k 10 "$FEWSHOT_S" "$PY" benchmarks/fewshot_dice.py --config gpu_first_look --run-dir /tmp/fewshot-runs \
        --results "$OUT/results" --nice 0 ${FEWSHOT_EXTRA:-} >>"$LOG" 2>&1
    echo "exit $?" >>"$LOG"
    stage "few-shot report from the records that finished"
    timeout 60 "$PY" benchmarks/fewshot_dice.py --config gpu_first_look --run-dir /tmp/fewshot-runs \
        --results "$OUT/results" --nice 0 --report-only ${FEWSHOT_EXTRA:-} >>"$LOG" 2>&1
    cp /tmp/fewshot-runs/records.jsonl "$OUT/results/fewshot_gpu_first_look_records.jsonl" 2>/dev/null
    stage "demo on CUDA"
    timeout -k 5 100 "$PY" -m gcl_engine.demo --out /tmp/demo_gpu ${DEMO_EXTRA:-} >>"$LOG" 2>&1
    echo "exit $?" >>"$LOG"
    stage "pre-training step benchmark on CUDA"
    step_speed 100 ${SPEED_EXTRA:-}
    ;;
  speed)
    stage "onnxruntime CUDA provider against torch CUDA"
    timeout -k 5 240 "$PY" benchmarks/inference_speed.py --device cuda --sizes 128,224 --repeats 3 \
        --results "$OUT/results" --nice 0 >>"$LOG" 2>&1
    echo "exit $?" >>"$LOG"
    stage "GCL step on CUDA (fast mitigator / naive sum)"
    step_speed 240
    stage "clinical CT on this machine's CPU"
    timeout -k 5 240 "$PY" benchmarks/inference_clinical.py --results "$OUT/results" --nice 0 >>"$LOG" 2>&1
    echo "exit $?" >>"$LOG"
    ;;
  *) echo "unknown SESSION=$SESSION (fewshot or speed)" | tee -a "$LOG"; exit 2 ;;
esac
stage done
