"""Long fault injection: kill -9 at many moments, a 2,000-volume folder. Run with ``make soak``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import SimpleITK as sitk

from gcl_engine import api
from tests.engine.synthetic import make_folder
from tests.reliability.kill_harness import (
    check_run_folder,
    kill_export,
    kill_pretraining,
    temp_leftovers,
    tiny_pretrain_config,
)

pytestmark = pytest.mark.soak


def test_kill_pretraining_at_ten_moments(tmp_path, record):
    scans, _, _ = make_folder(tmp_path / "pool", n=3, with_labels=False)
    rng = np.random.default_rng(2026)
    run = tmp_path / "run"
    cfg = tiny_pretrain_config(scans, run, steps=60, every=3)
    survived, worst_loss, after = 0, 0, 0
    for _ in range(10):
        after = min(cfg.steps - 1, after + int(rng.integers(1, 6)))
        killed_at = kill_pretraining(cfg, after_metric=after, delay_s=float(rng.uniform(0, 0.3)), tmp=tmp_path)
        best, problems = check_run_folder(run)
        lost = max(0, killed_at - best)
        worst_loss = max(worst_loss, lost)
        survived += int(not problems and lost <= cfg.checkpoint_every)
        after = best
    assert api.pretrain(cfg, resume=True).steps_done == cfg.steps
    assert temp_leftovers(run) == []
    record("kill -9 during pre-training", 10, survived, f"<= {worst_loss} steps", f"interval {cfg.checkpoint_every}")
    assert survived == 10


FINETUNE_CHILD = textwrap.dedent("""
    import sys
    from gcl_engine.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_kill_finetuning(tmp_path, record):
    scans, images, labels = make_folder(tmp_path / "pool", n=1)
    model = tmp_path / "model.pt"
    args = ["finetune", "--image", str(images[0]), "--labels", str(labels[0]), "--out", str(model), "--steps", "400",
            "--size", "32", "--base-channels", "4", "--device", "cpu", "--threads", "1", "--events", "json"]
    first = subprocess.run([sys.executable, "-c", FINETUNE_CHILD, *args[:-2], "--steps", "3"], capture_output=True)
    assert first.returncode == 0
    good = model.read_bytes()
    survived = 0
    for delay in (0.5, 1.5, 3.0):
        proc = subprocess.Popen([sys.executable, "-c", FINETUNE_CHILD, *args], stdout=subprocess.PIPE)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        survived += int(model.read_bytes() == good or api.Segmenter.load(model) is not None)
    record("kill -9 during fine-tuning", 3, survived, "0 (model of the last finished run kept)")
    assert survived == 3


def test_kill_export_at_five_moments(tmp_path, record):
    rng = np.random.default_rng(7)
    outcomes = [kill_export(tmp_path / f"m{i}.nii.gz", int(rng.integers(1, 4)), float(rng.uniform(0, 0.2)))
                for i in range(5)]
    survived = sum(ok for ok, _ in outcomes)
    record("kill -9 during NIfTI export", 5, survived, "0", "; ".join(d for _, d in outcomes))
    assert survived == 5


AUTOSAVE_CHILD = textwrap.dedent("""
    import sys, numpy as np
    from gcl_app.project import Project
    from gcl_engine import api
    project = Project(sys.argv[1])
    geometry = api.Geometry((1.0, 1.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    labels = np.zeros((24, 96, 96), np.uint8)
    for stroke in range(1, 10_000):
        labels[stroke % 24, (stroke * 7) % 96, :] = 1 + stroke % 3   # the user paints one more line
        project.save_annotations(labels, geometry, "case", ["background", "a", "b", "c"])
        print(stroke, flush=True)
""")


def test_kill_annotation_autosave(tmp_path, record):
    rng = np.random.default_rng(11)
    survived = 0
    for i in range(4):
        root = tmp_path / f"p{i}"
        proc = subprocess.Popen([sys.executable, "-c", AUTOSAVE_CHILD, str(root)], stdout=subprocess.PIPE, text=True)
        target = int(rng.integers(3, 12))
        acknowledged = 0
        for line in proc.stdout:
            acknowledged = int(line)
            if acknowledged >= target:
                break
        proc.kill()
        proc.wait()
        saved = api.load_volume(root / "annotations" / "case.nii.gz").array
        painted_rows = int((saved.reshape(24, 96, 96).max(axis=2) > 0).sum())
        survived += int(painted_rows >= min(acknowledged, 24))  # every acknowledged stroke is on disk
    record("kill -9 during annotation autosave", 4, survived, "0 acknowledged strokes")
    assert survived == 4


MEMORY_CHILD = textwrap.dedent("""
    import json, sys
    from gcl_engine import api
    result = api.scan_folder(sys.argv[1], cache=sys.argv[2], preprocess=api.PreprocessConfig(size=32))
    # VmHWM, not ru_maxrss: Linux carries the forking parent's (pytest's) peak over exec into ru_maxrss
    status = open("/proc/self/status").read()
    peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps({"volumes": len(result.volumes), "skipped": len(result.skipped), "peak_mb": peak,
                      "seconds": result.seconds}))
""")


def test_two_thousand_volumes_scan_with_bounded_memory(tmp_path, record):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2000):
        image = sitk.GetImageFromArray(rng.normal(0, 100, (6, 24, 24)).astype(np.int16))
        image.SetSpacing((1.0, 1.0, 2.0))
        sitk.WriteImage(image, str(folder / f"sub-{i:04d}_T1w.nii.gz"))
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(folder), str(tmp_path / "cache")],
                         capture_output=True, text=True, timeout=1800)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    record("2,000-volume folder scan", 1, int(stats["volumes"] == 2000), "0",
           f"peak RSS {stats['peak_mb']:.0f} MB, {stats['seconds']:.0f} s")
    assert stats["volumes"] == 2000 and stats["peak_mb"] < 1024
