"""Kill -9 at chosen moments and check what survived: shared by the quick tests and the soak suite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gcl_engine import api


@dataclass
class KillOutcome:
    what: str
    moment: str
    survived: bool
    steps_lost: int = 0
    detail: str = ""


def tiny_pretrain_config(folder: Path, out: Path, steps: int, every: int) -> api.PretrainConfig:
    return api.PretrainConfig(folder=str(folder), out=str(out), steps=steps, checkpoint_every=every,
                              volumes_per_batch=2, device="cpu", threads=1, preprocess=api.PreprocessConfig(size=32),
                              model=api.ModelConfig(base_channels=4, levels=3))


def kill_pretraining(cfg: api.PretrainConfig, after_metric: int, delay_s: float, tmp: Path) -> int:
    """Start the CLI child as the GUI does, SIGKILL it ``delay_s`` after its ``after_metric``-th step."""
    cfg_path = tmp / f"cfg_{after_metric}.json"
    cfg_path.write_text(api.to_json(cfg))
    proc = subprocess.Popen(api.job_command("pretrain", cfg_path, resume=True), stdout=subprocess.PIPE, text=True)
    last_step = 0
    for line in proc.stdout:
        event = api.event_from_json(line)
        if isinstance(event, api.Metric):
            last_step = event.step
            if last_step >= after_metric:
                time.sleep(delay_s)
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    return last_step


def check_run_folder(run: Path) -> tuple[int, list[str]]:
    """(step of the newest loadable checkpoint, problems): every target file must read back whole."""
    from gcl_engine.checkpoint import load_checkpoint

    problems, best = [], -1
    for ckpt in [run / "last.pt", *sorted((run / "checkpoints").glob("step_*.pt"))]:
        if ckpt.exists():
            try:
                best = max(best, int(load_checkpoint(ckpt, "gcl-pretrain")["step"]))
            except api.CheckpointError as exc:
                problems.append(str(exc))
    if (run / "config.json").exists():
        try:
            json.loads((run / "config.json").read_text())
        except json.JSONDecodeError:
            problems.append("config.json half-written")
    return best, problems


EXPORT_LOOP = textwrap.dedent("""
    import sys, numpy as np
    from gcl_engine import api
    ref = api.Geometry((0.8, 0.8, 2.0), (1.0, 2.0, 3.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        api.export_nifti(np.full((48, 192, 192), i % 200 + 1, np.uint8), ref, sys.argv[1], ["bg", "x"])
        print(i, flush=True)
""")


def kill_export(target: Path, after_writes: int, delay_s: float) -> tuple[bool, str]:
    """SIGKILL a process that rewrites one NIfTI in a loop; the file must read back whole (or not exist)."""
    proc = subprocess.Popen([sys.executable, "-c", EXPORT_LOOP, str(target)], stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.strip().isdigit() and int(line) >= after_writes:
            break
    time.sleep(delay_s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    if not target.exists():
        return True, "absent"
    arr = api.load_volume(target).array
    whole = arr.shape == (48, 192, 192) and len(np.unique(arr)) == 1
    return whole, f"value {int(arr.flat[0])}" if whole else "mixed or truncated content"


def temp_leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]
