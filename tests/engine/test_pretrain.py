"""Pre-training loop: every method runs, cancel saves, resume follows the uninterrupted curve, bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from gcl_engine.checkpoint import load_checkpoint
from gcl_engine.config import PretrainConfig
from gcl_engine.errors import CheckpointError, ConfigError, InputError, OutputError
from gcl_engine.events import CheckpointSaved, Finished, Metric
from gcl_engine.runtime import CancelToken
from gcl_engine.training.pretrain import pretrain, read_metrics
from tests.engine.synthetic import TINY_MODEL, TINY_PRE, make_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    scans, _, _ = make_folder(tmp_path_factory.mktemp("pool"), n=3, with_labels=False)
    return scans


def tiny(folder: Path, out: Path, **kw) -> PretrainConfig:
    base = PretrainConfig(folder=str(folder), out=str(out), steps=4, checkpoint_every=2, volumes_per_batch=2,
                          preprocess=TINY_PRE, model=TINY_MODEL, device="cpu", threads=1)
    return dataclasses.replace(base, **kw)


METHOD_ROWS = [
    dict(method="gcl"), dict(method="gcl", mitigator="exact"), dict(method="gcl", gradient_filter="B"),
    dict(method="gcl_no_filter"), dict(method="gcl_no_mitigator"), dict(method="naive_sum"),
    dict(method="simclr"), dict(method="single:position"),
]


@pytest.mark.parametrize("overrides", METHOD_ROWS, ids=lambda d: "-".join(str(v) for v in d.values()))
def test_every_method_trains_and_checkpoints(folder, tmp_path, overrides):
    events = []
    result = pretrain(tiny(folder, tmp_path / "run", steps=2, **overrides), on_event=events.append)
    assert result.status == "completed" and result.steps_done == 2
    state = load_checkpoint(result.checkpoint, "gcl-pretrain")
    assert state["step"] == 2 and state["method"] == overrides["method"]
    metrics = [e for e in events if isinstance(e, Metric)]
    assert len(metrics) == 2 and all(torch.isfinite(torch.tensor(m.values["loss"])) for m in metrics)
    assert isinstance(events[-1], Finished)
    if overrides["method"].startswith("gcl"):
        assert any(k.startswith("pix/loss/") for k in metrics[-1].values)
        assert "img/conflict_rate" in metrics[-1].values


def test_random_method_writes_initial_weights_without_training(folder, tmp_path):
    result = pretrain(tiny(folder, tmp_path / "run", method="random"))
    assert result.steps_done == 0 and load_checkpoint(result.checkpoint)["step"] == 0


def test_losses_fall_over_a_short_run(folder, tmp_path):
    pretrain(tiny(folder, tmp_path / "run", steps=30, method="naive_sum", lr=3e-3))
    losses = [row["loss"] for row in read_metrics(tmp_path / "run")]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_cancel_saves_a_checkpoint_and_resume_follows_the_same_curve(folder, tmp_path):
    straight = tmp_path / "straight"
    pretrain(tiny(folder, straight, steps=6))
    token = CancelToken()

    def cancel_after_three(event):
        if isinstance(event, Metric) and event.step == 3:
            token.cancel()

    interrupted = tmp_path / "interrupted"
    first = pretrain(tiny(folder, interrupted, steps=6), on_event=cancel_after_three, cancel=token)
    assert first.status == "cancelled" and first.steps_done == 3
    assert load_checkpoint(interrupted / "last.pt")["step"] == 3
    resumed = pretrain(tiny(folder, interrupted, steps=6), resume=True)
    assert resumed.status == "completed" and resumed.steps_done == 6
    a = [row["loss"] for row in read_metrics(straight)]
    b = [row["loss"] for row in read_metrics(interrupted)]
    assert len(a) == len(b) == 6
    assert a == pytest.approx(b, rel=1e-5, abs=1e-6)


def test_checkpoint_events_and_retention(folder, tmp_path):
    events = []
    pretrain(tiny(folder, tmp_path / "run", steps=8, checkpoint_every=1), on_event=events.append)
    saved = [e for e in events if isinstance(e, CheckpointSaved)]
    assert [e.step for e in saved] == list(range(1, 9))
    assert len(list((tmp_path / "run" / "checkpoints").glob("step_*.pt"))) == 3
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 8


def test_resume_skips_a_corrupt_last_checkpoint(folder, tmp_path):
    run = tmp_path / "run"
    pretrain(tiny(folder, run, steps=4, checkpoint_every=2))
    (run / "last.pt").write_bytes(b"truncated garbage")
    resumed = pretrain(tiny(folder, run, steps=5), resume=True)
    assert resumed.steps_done == 5  # fell back to checkpoints/step_0000004.pt


def test_resume_refuses_a_checkpoint_of_another_model(folder, tmp_path):
    run = tmp_path / "run"
    pretrain(tiny(folder, run, steps=2))
    other = dataclasses.replace(TINY_MODEL, base_channels=8)
    with pytest.raises(CheckpointError, match="another model"):
        pretrain(tiny(folder, run, steps=4, model=other), resume=True)


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no usable volume"):
        pretrain(tiny(tmp_path / "empty", tmp_path / "run"))


def test_no_usable_meta_label_is_a_clear_error(folder, tmp_path):
    single = tmp_path / "one"
    single.mkdir()
    src = sorted(folder.iterdir())[0]
    (single / src.name).write_bytes(src.read_bytes())
    with pytest.raises(ConfigError, match="no usable meta label"):
        pretrain(tiny(single, tmp_path / "run", meta_labels=("subject", "series")))


def test_impossible_config_is_refused(folder, tmp_path):
    with pytest.raises(ConfigError, match="steps"):
        pretrain(tiny(folder, tmp_path / "run", steps=0))
    with pytest.raises(ConfigError, match="method"):
        pretrain(tiny(folder, tmp_path / "run", method="magic"))


def test_unwritable_run_folder_is_a_clear_error(folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot create the run folder"):
        pretrain(tiny(folder, blocker / "run"))


def test_out_of_memory_halves_the_batch_and_goes_on(folder, tmp_path, monkeypatch):
    from gcl_engine.events import Log
    from gcl_engine.training import pretrain as pretrain_module

    original = pretrain_module._Loop._train_step
    calls = {"n": 0}

    def flaky(self, step):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(self, step)

    monkeypatch.setattr(pretrain_module._Loop, "_train_step", flaky)
    events = []
    result = pretrain(tiny(folder, tmp_path / "run", steps=2, volumes_per_batch=4), on_event=events.append)
    assert result.steps_done == 2
    assert any(isinstance(e, Log) and "batch halved to 2" in e.message for e in events)
    assert read_metrics(tmp_path / "run")[-1]["volumes_per_batch"] == 2


def test_disk_full_while_checkpointing_keeps_the_last_good_checkpoint(folder, tmp_path, monkeypatch):
    import errno
    import os

    run = tmp_path / "run"
    pretrain(tiny(folder, run, steps=2, checkpoint_every=1))
    good = (run / "last.pt").read_bytes()
    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith(".pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OutputError, match="disk full"):
        pretrain(tiny(folder, run, steps=4, checkpoint_every=1), resume=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (run / "last.pt").read_bytes() == good
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]  # no half-written file left behind
    assert load_checkpoint(run / "last.pt")["step"] == 2


def test_worker_processes_build_the_same_batches_as_inline(folder, tmp_path):
    """On a GPU the batches are built by worker processes; the curve must not change with it."""
    inline = tmp_path / "inline"
    pretrain(tiny(folder, inline, steps=4))
    workers = tmp_path / "workers"
    pretrain(tiny(folder, workers, steps=4, data_workers=2))
    a = [row["loss"] for row in read_metrics(inline)]
    b = [row["loss"] for row in read_metrics(workers)]
    assert a == pytest.approx(b, rel=1e-6)
