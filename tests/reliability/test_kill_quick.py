"""Kill -9 during pre-training and during an export (quick versions of tests/soak)."""

from __future__ import annotations

from gcl_engine import api
from gcl_engine.io.atomic import atomic_write_bytes, remove_stale_temps, temp_path_for
from tests.engine.synthetic import make_folder
from tests.reliability.kill_harness import (
    check_run_folder,
    kill_export,
    kill_pretraining,
    temp_leftovers,
    tiny_pretrain_config,
)


def test_kill_during_pretraining_loses_at_most_one_interval_and_resumes(tmp_path):
    scans, _, _ = make_folder(tmp_path / "pool", n=3, with_labels=False)
    run = tmp_path / "run"
    cfg = tiny_pretrain_config(scans, run, steps=12, every=2)
    killed_at = kill_pretraining(cfg, after_metric=5, delay_s=0.05, tmp=tmp_path)
    best, problems = check_run_folder(run)
    assert problems == [] and killed_at - best <= cfg.checkpoint_every
    result = api.pretrain(cfg, resume=True)
    assert result.steps_done == 12 and result.status == "completed"
    assert temp_leftovers(run / "checkpoints") == []  # the resumed writer removed the dead one's temp files


def test_kill_during_export_leaves_a_whole_file(tmp_path):
    target = tmp_path / "mask.nii.gz"
    whole, detail = kill_export(target, after_writes=2, delay_s=0.07)
    assert whole, detail
    survivor = api.load_volume(target)
    api.export_nifti(survivor.array, survivor.geometry, target)  # the next export cleans the dead one's temp
    assert temp_leftovers(tmp_path) == []


def test_stale_temp_of_a_dead_writer_is_removed_but_a_live_one_is_kept(tmp_path):
    target = tmp_path / "a.nii.gz"
    dead = target.with_name("a.tmp-999999999-abcd.nii.gz")
    dead.write_bytes(b"half")
    live = temp_path_for(target)  # this process's own pid: alive
    live.write_bytes(b"in progress")
    assert remove_stale_temps(target) == [dead]
    assert live.exists() and not dead.exists()
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    assert (tmp_path / "b.bin").read_bytes() == b"x"
