"""Full disks and read-only places: a clear message, the previous good files intact, work goes on after."""

from __future__ import annotations

import numpy as np
import pytest

from gcl_engine import api
from tests.engine.synthetic import make_folder
from tests.reliability.fs_faults import fill, remount, small_tmpfs
from tests.reliability.kill_harness import temp_leftovers, tiny_pretrain_config

GEOMETRY = api.Geometry((1.0, 1.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def _labels(value: int) -> np.ndarray:
    rng = np.random.default_rng(value)  # incompressible enough to need real space
    return rng.integers(0, 4, (32, 128, 128)).astype(np.uint8)


def test_export_on_a_full_disk_keeps_the_previous_export(tmp_path):
    with small_tmpfs(tmp_path, 2048) as disk:
        target = disk / "mask.nii.gz"
        api.export_nifti(_labels(1), GEOMETRY, target)
        before = target.read_bytes()
        filler = fill(disk)
        with pytest.raises(api.OutputError, match="disk full"):
            api.export_nifti(_labels(2), GEOMETRY, target)
        assert target.read_bytes() == before and temp_leftovers(disk) == []
        filler.unlink()
        api.export_nifti(_labels(2), GEOMETRY, target)  # works again once space is freed
        assert np.array_equal(api.load_volume(target).array, _labels(2))


def test_export_to_a_read_only_place_is_a_clear_error(tmp_path):
    with small_tmpfs(tmp_path, 1024) as disk:
        remount(disk, "ro")
        with pytest.raises(api.OutputError, match="read-only"):
            api.export_nifti(_labels(1), GEOMETRY, disk / "mask.nii.gz")


def test_pretraining_on_a_full_disk_stops_clearly_and_resumes_after(tmp_path):
    scans, _, _ = make_folder(tmp_path / "pool", n=3, with_labels=False)
    with small_tmpfs(tmp_path, 4096) as disk:
        run = disk / "run"
        cfg = tiny_pretrain_config(scans, run, steps=4, every=2)
        cfg = type(cfg)(**{**cfg.__dict__, "cache": str(tmp_path / "cache")})
        api.pretrain(cfg)
        good = (run / "last.pt").read_bytes()
        filler = fill(disk, leave_kb=8)
        longer = type(cfg)(**{**cfg.__dict__, "steps": 8})
        with pytest.raises(api.OutputError, match="disk full|No space"):
            api.pretrain(longer, resume=True)
        assert (run / "last.pt").read_bytes() == good
        filler.unlink()
        assert api.pretrain(longer, resume=True).steps_done == 8


def test_run_folder_on_a_read_only_file_system(tmp_path):
    scans, _, _ = make_folder(tmp_path / "pool", n=2, with_labels=False)
    with small_tmpfs(tmp_path, 1024) as disk:
        remount(disk, "ro")
        with pytest.raises(api.OutputError, match="run folder"):
            api.pretrain(tiny_pretrain_config(scans, disk / "run", steps=2, every=1))


def test_cache_deleted_between_runs_is_rebuilt(tmp_path):
    import shutil

    scans, _, _ = make_folder(tmp_path / "pool", n=2, with_labels=False)
    cfg = tiny_pretrain_config(scans, tmp_path / "run", steps=2, every=1)
    api.pretrain(cfg)
    shutil.rmtree(tmp_path / "run" / "cache")
    longer = type(cfg)(**{**cfg.__dict__, "steps": 3})
    assert api.pretrain(longer, resume=True).steps_done == 3


def test_scan_folder_vanishing_mid_scan_is_reported_not_fatal(tmp_path):
    import shutil

    scans, _, _ = make_folder(tmp_path / "pool", n=4, with_labels=False)

    def pull_the_disk(event):
        if isinstance(event, api.Progress) and event.stage == "scan" and event.done == 1:
            shutil.rmtree(scans)

    result = api.scan_folder(scans, on_event=pull_the_disk)
    assert len(result.volumes) == 1
    assert len(result.skipped) == 3 and all(s.reason for s in result.skipped)
