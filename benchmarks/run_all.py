"""Run the five speed benchmarks in turn (``make bench``); each writes benchmarks/results/<name>.md and .json.

    python benchmarks/run_all.py [--quick] [--only scan_speed,pretrain_speed] [--device cuda]

The scripts run at niceness >= 5 (the machine may be shared). ``--device`` is passed to the scripts that take it
(pre-training and inference); a failure is reported and the others still run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("scan_speed", "pretrain_speed", "inference_speed", "inference_clinical", "threads_under_load",
           "finetune_latency", "ui_responsiveness", "round_time")
NEEDS_DISPLAY = ("ui_responsiveness",)  # napari: run under xvfb-run when there is no display
TAKES_DEVICE = ("pretrain_speed", "inference_speed")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke-sized runs")
    p.add_argument("--only", help=f"comma-separated subset of {', '.join(SCRIPTS)}")
    p.add_argument("--device", help="cpu | cuda | auto, for pretrain_speed and inference_speed")
    p.add_argument("--no-write", action="store_true", help="print the tables only")
    args = p.parse_args()
    chosen = [s.strip() for s in args.only.split(",")] if args.only else list(SCRIPTS)
    unknown = [s for s in chosen if s not in SCRIPTS]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}")
    summary = []
    for name in chosen:
        argv = [sys.executable, str(HERE / f"{name}.py")]
        if args.quick:
            argv.append("--quick")
        if args.no_write:
            argv.append("--no-write")
        if args.device and name in TAKES_DEVICE:
            argv += ["--device", args.device]
        if name in NEEDS_DISPLAY and not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
            argv = ["xvfb-run", "-a", *argv]
        print(f"\n=== {name}: {' '.join(argv[1:])}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call(argv)
        summary.append((name, code, time.perf_counter() - t0))
    print("\n=== summary")
    for name, code, seconds in summary:
        print(f"  {name:<18} {'ok' if code == 0 else f'FAILED ({code})':<12} {seconds:6.0f} s")
    return 0 if all(code == 0 for _, code, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
