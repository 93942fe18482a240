"""The GUI under faults and load: a big folder scan and a fine-tune while browsing keep the window responsive;
a full disk during autosave, a read-only export folder and a killed training child are clear messages and
the app keeps working; after a crash the next start brings back the annotations and the newest checkpoint.

Full disks and read-only places are real (a small tmpfs, ``tests/reliability/fs_faults.py``), not mocks.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from gcl_app.project import PROJECT_ENV
from gcl_app.widgets.slices import show_slice
from qtpy.QtCore import QTimer

from gcl_engine import api
from tests.app.qt_helpers import StallMonitor
from tests.app.test_finetune_panel import open_sample, paint_liver, tiny_form
from tests.reliability.fs_faults import fill, remount, small_tmpfs

STALL_MS = 100


def many_volumes(folder: Path, n: int, shape=(4, 16, 16)) -> Path:
    """``n`` tiny NIfTI volumes (noise), one subject each: a big folder in seconds."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        image = sitk.GetImageFromArray(rng.normal(0, 100, shape).astype(np.int16))
        image.SetSpacing((1.0, 1.0, 2.0))
        sitk.WriteImage(image, str(folder / f"sub-{i:04d}_T1w.nii.gz"))
    return folder


def data_panel(viewer):
    _dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Data & pre-training")
    return panel


def finetune_started(panel) -> bool:
    return panel.progress.text.text().startswith("finetune")


# --- responsiveness ---------------------------------------------------------------------------------


def test_scanning_a_folder_of_300_volumes_keeps_the_window_responsive(make_napari_viewer, qtbot, tmp_path):
    folder = many_volumes(tmp_path / "many", 300)
    panel = data_panel(make_napari_viewer())
    qtbot.waitUntil(lambda: panel.devices_known, timeout=60_000)  # torch's import is not part of the scan
    panel.folder.value = str(folder)
    monitor = StallMonitor()
    monitor.start()
    panel.scan_button.click()
    qtbot.waitUntil(lambda: panel.scan_result is not None and panel.scan_view.filled, timeout=120_000)
    qtbot.wait(100)  # the table's layout pass after the last rows
    monitor.stop()
    assert len(panel.scan_result.volumes) == 300 and panel.scan_view.volumes.rowCount() == 300
    assert panel.scan_view.volumes.item(299, 0).text() == "sub-0299_T1w"
    assert monitor.ticks > 20 and monitor.max_gap_ms < STALL_MS, monitor.report()
    panel.shutdown()


def test_a_fine_tune_keeps_running_while_the_user_browses_slices(make_napari_viewer, qtbot, tiny_pretrained):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    annotations = paint_liver(panel, viewer)
    tiny_form(panel, tiny_pretrained)
    panel.form.steps.value, panel.form.preview_every.value = 60, 3
    show_slice(viewer, annotations, 15)
    n_slices = annotations.data.shape[0]
    previews, shown = [], []
    panel.runner.preview.connect(previews.append)
    qtbot.waitUntil(lambda: panel.devices_known, timeout=60_000)

    def browse() -> None:  # the user scrolls through the volume, forth and back
        k = len(shown) % (2 * n_slices)
        viewer.dims.set_current_step(0, k if k < n_slices else 2 * n_slices - 1 - k)
        shown.append(viewer.dims.current_step[0])

    scroller = QTimer()
    scroller.setInterval(30)
    scroller.timeout.connect(browse)
    monitor = StallMonitor()
    monitor.start()
    panel.finetune_button.click()
    qtbot.waitUntil(lambda: finetune_started(panel), timeout=90_000)
    scroller.start()
    while_training = len(previews)
    with qtbot.waitSignal(panel.runner.finished, timeout=120_000) as done:
        pass
    previews_while_browsing = len(previews) - while_training
    with qtbot.waitSignal(panel.preview_updated, timeout=60_000, check_params_cb=lambda kind: kind == "volume"):
        pass
    scroller.stop()
    monitor.stop()
    assert done.args[0].status == "completed" and done.args[0].result["steps"] == 60
    assert previews_while_browsing >= 3, previews_while_browsing
    assert len(set(shown)) == n_slices and len(shown) > 2 * n_slices  # every slice seen, more than once
    assert monitor.max_gap_ms < STALL_MS, monitor.report()
    assert panel.project.current_model() is not None
    panel.shutdown()


# --- full disk, read-only places, a killed child --------------------------------------------------------


def test_a_full_disk_during_autosave_is_reported_and_the_last_save_survives(make_napari_viewer, qtbot, tmp_path,
                                                                            monkeypatch):
    with small_tmpfs(tmp_path, 3072) as disk:
        monkeypatch.setenv(PROJECT_ENV, str(disk / "project"))
        viewer = make_napari_viewer()
        panel = open_sample(viewer)
        annotations = paint_liver(panel, viewer)
        with qtbot.waitSignal(panel.autosaver.saved, timeout=30_000):
            panel.autosaver.save_now()
        saved = panel.project.annotation_path("example_ct_sm")
        good = saved.read_bytes()
        first = np.array(annotations.data)

        filler = fill(disk)
        rng = np.random.default_rng(1)  # strokes that compress badly: the new file cannot fit
        annotations.data[:] = rng.integers(0, 2, annotations.data.shape).astype(annotations.data.dtype)
        annotations.refresh()
        panel.autosaver.mark_dirty()
        with qtbot.waitSignal(panel.autosaver.failed, timeout=30_000) as failed:
            panel.autosaver.save_now()
        assert "disk full" in failed.args[0], failed.args[0]
        assert panel.status.is_error and "disk full" in panel.status.text() and "autosave" in panel.status.text()
        assert panel.autosaver.dirty  # the next autosave tries again
        assert saved.read_bytes() == good and np.array_equal(api.load_volume(saved).array, first)
        assert [p.name for p in saved.parent.iterdir() if ".tmp-" in p.name] == []

        filler.unlink()  # the user frees space: the timer's next autosave works
        panel.autosaver.set_interval(1)
        with qtbot.waitSignal(panel.autosaver.saved, timeout=30_000):
            pass
        assert np.array_equal(api.load_volume(saved).array, annotations.data)
        assert not panel.status.is_error and "saved" in panel.status.text()
        panel.shutdown()


def test_export_to_a_read_only_folder_is_a_clear_message(make_napari_viewer, qtbot, tmp_path):
    from gcl_app.widgets.export_panel import ExportPanel

    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((4, 8, 8), np.int16), name="scan")
    labels = viewer.add_labels(np.zeros((4, 8, 8), np.uint8), name="mask", affine=image.affine.affine_matrix)
    labels.data[1, 2:5, 2:5] = 1
    _dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Predict & export")
    assert isinstance(panel, ExportPanel)
    panel.labels_chooser.setCurrentText("mask")
    with small_tmpfs(tmp_path, 1024) as disk:
        (disk / "exports").mkdir()
        remount(disk, "ro")
        for target in (disk / "exports" / "mask.nii.gz", disk / "new folder" / "mask.nii.gz"):
            panel.mask_path.value = str(target)
            panel.export_mask_button.click()
            qtbot.waitUntil(lambda: panel.progress.text.text() == "failed", timeout=30_000)
            assert panel.status.is_error and "read-only" in panel.status.text().lower(), panel.status.text()
            assert not target.exists()
            panel.progress.done("")
        remount(disk, "rw")  # the app keeps working: the same export now succeeds
        panel.mask_path.value = str(disk / "exports" / "mask.nii.gz")
        panel.export_mask_button.click()
        qtbot.waitUntil(lambda: "written" in panel.status.text(), timeout=30_000)
        assert np.array_equal(api.load_volume(disk / "exports" / "mask.nii.gz").array, labels.data)
    panel.shutdown()


def test_a_killed_training_child_is_reported_and_a_new_job_starts(make_napari_viewer, qtbot, tiny_pretrained):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    paint_liver(panel, viewer)
    tiny_form(panel, tiny_pretrained)
    panel.form.steps.value = 100_000
    panel.finetune_button.click()
    qtbot.waitUntil(lambda: finetune_started(panel), timeout=90_000)
    with qtbot.waitSignal(panel.runner.failed, timeout=30_000) as failed:
        os.kill(panel.runner._proc.pid, signal.SIGKILL)  # what the OOM killer (or a user's kill -9) does
    message = failed.args[0]
    assert "killed" in message and "exit code -9" in message, message
    assert panel.status.is_error and panel.status.text() == message
    assert panel.finetune_button.isEnabled() and not panel.cancel_button.isEnabled() and not panel.runner.running
    assert panel.progress.text.text() == "fine-tuning failed"

    panel.form.steps.value = 4
    with qtbot.waitSignal(panel.preview_updated, timeout=90_000, check_params_cb=lambda kind: kind == "volume"):
        panel.finetune_button.click()
    assert panel.project.current_model() is not None and not panel.status.is_error
    panel.shutdown()
