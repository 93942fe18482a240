"""JobRunner: a real child process of the engine's CLI, its events as Qt signals, cancel, resume, crash."""

from __future__ import annotations

import dataclasses

import pytest
from gcl_app.services import JobRunner, failure_message

from gcl_engine import api
from tests.app.qt_helpers import UiThreadWatch
from tests.app.synthetic import TINY


def tiny_pretrain(folder, out, steps: int) -> api.PretrainConfig:
    base = api.PretrainConfig()
    return api.PretrainConfig(folder=str(folder), out=str(out), steps=steps, checkpoint_every=1000, device="cpu",
                              threads=1, volumes_per_batch=2,
                              preprocess=dataclasses.replace(base.preprocess, size=TINY["size"]),
                              model=dataclasses.replace(base.model, base_channels=TINY["base_channels"],
                                                        levels=TINY["levels"]))


def _wait_for_step(qtbot, runner, seen, at_least: int) -> None:
    qtbot.waitUntil(lambda: any(p.stage == "pretrain" and p.done >= at_least for p in seen) or not runner.running,
                    timeout=90_000)


def test_pretrain_reports_progress_cancels_and_resumes(qtbot, scan_folder, tmp_path):
    run = tmp_path / "run"
    runner = JobRunner(grace_s=60)
    progress, checkpoints, finished = [], [], []
    runner.progress.connect(progress.append)
    runner.checkpoint.connect(checkpoints.append)
    runner.finished.connect(finished.append)
    runner.failed.connect(lambda message: pytest.fail(message))
    watch = UiThreadWatch().start()
    runner.start("pretrain", tiny_pretrain(scan_folder, run, steps=2000), run)
    _wait_for_step(qtbot, runner, progress, 2)
    with qtbot.waitSignal(runner.finished, timeout=60_000):
        runner.cancel()
    watch.stop()
    assert finished[-1].status == "cancelled"
    stopped_at = finished[-1].result["steps"]
    assert 2 <= stopped_at < 2000
    assert checkpoints[-1].reason == "cancel" and (run / "last.pt").is_file()
    assert any(p.eta_s is not None for p in progress if p.stage == "pretrain")
    assert not watch.entries, watch.report()

    progress.clear()
    runner.start("pretrain", tiny_pretrain(scan_folder, run, steps=2000), run, resume=True)
    _wait_for_step(qtbot, runner, progress, stopped_at + 1)
    first = min(p.done for p in progress if p.stage == "pretrain")
    assert first == stopped_at + 1  # continued from the checkpoint, not from zero
    with qtbot.waitSignal(runner.finished, timeout=60_000):
        runner.cancel()
    assert finished[-1].status == "cancelled" and not runner.running


def test_a_failing_child_is_reported_with_its_stderr(qtbot, tmp_path):
    runner = JobRunner()
    bad = api.PretrainConfig(folder=str(tmp_path / "missing"), out=str(tmp_path / "run"), steps=1, device="cpu")
    with qtbot.waitSignal(runner.failed, timeout=60_000) as blocker:
        runner.start("pretrain", bad, tmp_path / "run")
    message = blocker.args[0]
    assert "exit code" in message and "missing" in message
    assert not runner.running


def test_cancel_kills_a_child_that_does_not_stop(qtbot, tmp_path, monkeypatch):
    """A child that ignores the cancel file is killed after the grace period and reported as cancelled."""
    runner = JobRunner(grace_s=0.5)
    sleeper = ["python3", "-c", "import time; time.sleep(60)"]
    monkeypatch.setattr(api, "job_command", lambda *args, **kwargs: sleeper)
    runner.start("pretrain", api.PretrainConfig(), tmp_path)
    with qtbot.waitSignal(runner.finished, timeout=10_000) as blocker:
        runner.cancel()
    assert blocker.args[0].status == "cancelled" and blocker.args[0].result["killed"]


def test_out_of_memory_is_named():
    text = failure_message("pretrain", 1, ["Traceback ...", "torch.OutOfMemoryError: CUDA out of memory."], False)
    assert "ran out of memory" in text and "CUDA out of memory" in text
    assert "ran out of memory" in failure_message("finetune", -9, [], killed=False)
    assert "stopped by force" in failure_message("finetune", -9, [], killed=True)
