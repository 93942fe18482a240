"""Engine work at each CPU thread count, with and without a competing CPU-bound process (issue 17).

Two workloads, each in its own child process per run, timed inside the child (imports excluded):

- fine-tune: ``api.finetune`` on the sample CT and its labels (slices 5,15,25; the GUI's CPU preset: 64 px,
  base 8, 4 levels), 25 steps from scratch (the GUI's first preview), torch on the CPU;
- predict: ``Segmenter.load(onnx).predict`` of the 512x512 DICOM CT through onnxruntime, with the model that
  fine-tune wrote (exported once).

Each runs at every thread count in ``--threads`` (PredictConfig/FinetuneConfig ``threads``), first with no
competitor and then beside one busy-looping Python process (started before the child, stopped after it);
the rounds interleave every setting so the machine's own load affects all alike. The engine's rule
(runtime.default_threads) is marked.

    nice -n 5 .venv/bin/python benchmarks/threads_under_load.py [--quick] [--rounds 2] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    DEFAULT_DATA,
    SAMPLE_CT,
    SAMPLE_DATA,
    SAMPLE_LABELS,
    Report,
    base_parser,
    be_nice,
    child_reply,
    markdown_table,
    median,
    run_child,
)

BIG = [DEFAULT_DATA / "totalseg" / "example_ct_dicom", SAMPLE_DATA / "scans" / "ct_dicom"]
PRESET = {"preprocess": {"size": 64}, "model": {"base_channels": 8, "levels": 4}}


def finetune_config(out: Path, threads: int, steps: int) -> dict:
    return {"image": str(SAMPLE_CT), "labels": str(SAMPLE_LABELS), "out": str(out), "device": "cpu",
            "steps": steps, "slices": [5, 15, 25], "threads": threads, "preview_every": steps, **PRESET}


def child(spec: dict) -> None:
    from gcl_engine import api

    if spec["work"] == "finetune":
        cfg = api.from_dict(api.FinetuneConfig, spec["config"])
        t0 = time.perf_counter()
        api.finetune(cfg)
        child_reply({"seconds": time.perf_counter() - t0})
        return
    seg = api.Segmenter.load(spec["model"], api.PredictConfig(backend="onnxruntime", device="cpu",
                                                              threads=spec["threads"]))
    vol = api.load_volume(spec["volume"])
    t0 = time.perf_counter()
    seg.predict(vol)
    child_reply({"seconds": time.perf_counter() - t0})


def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--threads", default=f"1,{os.cpu_count() or 2}", help="thread counts to compare")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    be_nice(args.nice)
    if args.child:
        child(json.loads(args.child))
        return
    if args.quick:
        args.rounds, args.steps = 1, 5
    from gcl_engine.runtime import default_threads

    counts = sorted({int(t) for t in args.threads.split(",")} | {default_threads()})
    volume = next((b for b in BIG if b.exists()), SAMPLE_CT)
    config = {"threads": counts, "rounds": args.rounds, "steps": args.steps, "volume": str(volume),
              "rule": default_threads()}
    report = Report("threads_under_load", "Threads with and without a competing process (issue 17)", args, config)
    work = Path(tempfile.mkdtemp(prefix="gcl-bench-threads-"))
    times: dict[tuple[str, bool, int], list[float]] = {}
    try:
        model, onnx = work / "model.pt", work / "model.onnx"
        (work / "ft.json").write_text(json.dumps(finetune_config(model, 1, args.steps)), encoding="utf-8")
        for cmd in (["finetune", "--config", str(work / "ft.json")],
                    ["export-onnx", "--model", str(model), "--out", str(onnx)]):
            subprocess.run([sys.executable, "-m", "gcl_engine.cli", *cmd], check=True, capture_output=True)
        for _ in range(args.rounds):
            for busy in (False, True):
                for threads in counts:
                    for work_name in ("finetune", "predict"):
                        spec = {"work": work_name, "threads": threads, "model": str(onnx), "volume": str(volume),
                                "config": finetune_config(work / f"ft{threads}.pt", threads, args.steps)}
                        rival = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
                        try:
                            r = run_child([sys.executable, __file__, "--nice", str(args.nice), "--child",
                                           json.dumps(spec)])
                        finally:
                            if rival is not None:
                                rival.terminate()
                                rival.wait()
                        times.setdefault((work_name, busy, threads), []).append(r["seconds"])
                        print(work_name, "busy" if busy else "quiet", threads, f"{r['seconds']:.1f} s", flush=True)
        rows = []
        for work_name in ("finetune", "predict"):
            for threads in counts:
                quiet, busy = median(times[(work_name, False, threads)]), median(times[(work_name, True, threads)])
                rows.append([work_name, f"{threads}{' (rule)' if threads == default_threads() else ''}", quiet, busy,
                             busy / quiet, ", ".join(f"{t:.1f}" for t in times[(work_name, True, threads)])])
        report.data = {f"{w}|{'busy' if b else 'quiet'}|{t}": v for (w, b, t), v in times.items()}
        report.add(f"{os.cpu_count()} cores; the engine's rule gives {default_threads()} thread(s). Fine-tune: "
                   f"{args.steps} steps at 64 px, base 8, 4 levels, from scratch; predict: {volume.name} through "
                   f"onnxruntime. Median of {args.rounds} interleaved rounds, seconds inside the child (imports "
                   f"excluded); 'busy': beside one `while True: pass` Python process.\n")
        report.add(markdown_table(["work", "threads", "quiet s", "busy s", "busy / quiet", "busy runs s"], rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.write()


if __name__ == "__main__":
    main()
