"""The ``gcl`` console commands end to end, as a user (and the GUI's child process) runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gcl_engine import api
from gcl_engine.checkpoint import load_checkpoint
from gcl_engine.cli import main
from tests.engine.synthetic import make_folder

TINY = ["--size", "32", "--base-channels", "4", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("cli"), n=3)


def test_scan_json_lists_volumes_and_meta_labels(folder, capsys):
    scans, _, _ = folder
    (scans / "notes.bin").write_bytes(b"\x00\x01garbage")
    assert main(["scan", str(scans), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["volumes"]) == 3
    assert out["meta_labels"]["position"]["usable"] and out["meta_labels"]["subject"]["n_values"] == 3
    assert [Path(s["path"]).name for s in out["skipped"]] == ["notes.bin"]
    (scans / "notes.bin").unlink()


def test_scan_of_a_missing_folder_exits_2_with_a_message(tmp_path, capsys):
    assert main(["scan", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_pretrain_finetune_predict_export_pipeline(folder, tmp_path, capsys):
    scans, images, labels = folder
    run = tmp_path / "run"
    assert main(["pretrain", str(scans), "--out", str(run), "--steps", "2", "--volumes-per-batch", "2", *TINY]) == 0
    assert (run / "last.pt").exists()
    model = tmp_path / "model.pt"
    assert main(["finetune", "--pretrained", str(run / "last.pt"), "--image", str(images[0]), "--labels",
                 str(labels[0]), "--slices", "3,8,12", "--axis", "k", "--out", str(model), "--steps", "2",
                 "--class-names", "background,liver,vessel", "--field-of-view", "60", *TINY]) == 0
    assert json.loads(load_checkpoint(model, "gcl-segmenter")["preprocess_json"])["field_of_view_mm"] == 60.0
    out_mask = tmp_path / "mask.nii.gz"
    assert main(["predict", "--model", str(model), "--image", str(images[1]), "--out", str(out_mask)]) == 0
    mask, image = api.load_volume(out_mask), api.load_volume(images[1])
    assert mask.geometry.allclose(image.geometry) and mask.array.shape == image.array.shape
    assert json.loads((tmp_path / "mask.labels.json").read_text())["1"] == "liver"
    assert main(["export-onnx", "--model", str(model), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "logit difference" in capsys.readouterr().out
    out_dir = tmp_path / "masks"
    assert main(["predict", "--model", str(tmp_path / "m.onnx"), "--image", str(scans), "--out", str(out_dir),
                 "--threads", "1"]) == 0
    assert sorted(p.name for p in out_dir.glob("*.nii.gz")) == [
        "case00_ct_seg.nii.gz", "case01_ct_seg.nii.gz", "case02_mr_seg.nii.gz"]


def test_events_json_and_cancel_file_in_a_child_process(folder, tmp_path):
    """The GUI's path: JSON events on stdout, a cancel file stops the run with a checkpoint."""
    scans, _, _ = folder
    cfg = api.PretrainConfig(folder=str(scans), out=str(tmp_path / "run"), steps=200, volumes_per_batch=2,
                             checkpoint_every=1000, device="cpu", threads=1,
                             preprocess=api.PreprocessConfig(size=32), model=api.ModelConfig(base_channels=4, levels=3))
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(api.to_json(cfg))
    cancel = tmp_path / "stop"
    proc = subprocess.Popen(api.job_command("pretrain", cfg_path, cancel), stdout=subprocess.PIPE, text=True)
    kinds = []
    for line in proc.stdout:
        event = api.event_from_json(line)
        kinds.append(type(event).__name__)
        if isinstance(event, api.Metric) and event.step == 3:
            cancel.touch()
    assert proc.wait(timeout=120) == 0
    assert "Progress" in kinds and "CheckpointSaved" in kinds
    assert kinds[-1] == "Finished"
    last = api.read_metrics(tmp_path / "run")[-1]["step"]
    assert 3 <= last < 200


def test_finetune_with_mismatched_labels_exits_2(folder, tmp_path, capsys):
    scans, images, labels = folder
    bad = tmp_path / "bad.nii.gz"
    from tests.engine.synthetic import write

    write(np.zeros((4, 4, 4), np.uint8), bad)
    code = main(["finetune", "--image", str(images[0]), "--labels", str(bad), "--out", str(tmp_path / "m.pt"), *TINY])
    assert code == 2 and "does not match image shape" in capsys.readouterr().err


def test_console_script_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gcl_engine.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "gcl-studio" in out.stdout
