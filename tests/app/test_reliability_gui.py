"""The GUI under faults and load: a big folder scan and a fine-tune while browsing keep the window responsive;
a full disk during autosave, a read-only export folder and a killed training child are clear messages and
the app keeps working; after a crash the next start brings back the annotations and the newest checkpoint.

Full disks and read-only places are real (a small tmpfs, ``tests/reliability/fs_faults.py``), not mocks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import numpy as np
import pytest
from gcl_app.project import PROJECT_ENV
from gcl_app.widgets import annotation_layers as tied
from gcl_app.widgets.slices import show_slice
from qtpy.QtCore import QTimer

from gcl_engine import api
from tests.app.qt_helpers import UiThreadWatch
from tests.app.synthetic import many_volumes, synthetic_ct, write_scan
from tests.app.test_finetune_panel import open_sample, paint_liver, tiny_form
from tests.app.test_standalone import wait_ready
from tests.app.test_standalone_privacy import standalone_windows
from tests.reliability.fs_faults import fill, remount, small_tmpfs


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
    with UiThreadWatch() as watch:
        panel.scan_button.click()
        qtbot.waitUntil(lambda: panel.scan_result is not None and panel.scan_view.filled, timeout=120_000)
        qtbot.wait(100)  # the table's layout pass after the last rows
    assert len(panel.scan_result.volumes) == 300 and panel.scan_view.volumes.rowCount() == 300
    assert panel.scan_view.volumes.item(299, 0).text() == "sub-0299_T1w"
    table = panel.scan_view.volumes  # columns sized once filled: the names fit
    assert table.columnWidth(0) >= table.fontMetrics().horizontalAdvance("sub-0299_T1w")
    assert not watch.entries, watch.report()  # 300 files were read, none of them by the UI thread
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
    watch = UiThreadWatch().start()
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
    watch.stop()
    assert done.args[0].status == "completed" and done.args[0].result["steps"] == 60
    assert previews_while_browsing >= 3, previews_while_browsing
    assert len(set(shown)) == n_slices and len(shown) > 2 * n_slices  # every slice seen, more than once
    assert not watch.entries, watch.report()  # training and the whole-volume prediction ran elsewhere
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
        with qtbot.waitSignal(panel.autosaver.failed, timeout=30_000):  # Fine-tune saves first: it cannot
            panel.finetune_button.click()
        assert "Could not save the annotations" in panel.status.text() and "disk full" in panel.status.text()
        assert not panel.runner.running and panel.finetune_button.isEnabled()
        assert panel.progress.bar.maximum() > 0  # not left spinning on "saving annotations …"
        assert saved.read_bytes() == good

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


# --- recovery after a crash ---------------------------------------------------------------------------

CRASHING_SESSION = textwrap.dedent("""
    import json, os, signal, sys, time
    from pathlib import Path
    from gcl_app.standalone.main import create_app
    from gcl_app.standalone.window import MainWindow
    from gcl_app.widgets import annotation_layers as tied
    from qtpy.QtCore import QEventLoop

    config, scans, project, pretrained = sys.argv[1:5]
    app = create_app()
    window = MainWindow(config_folder=Path(config))
    window.show()

    def wait_until(done, timeout_s=180):
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                sys.exit("timed out")
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)

    ready = []
    window.workspace.ready.connect(ready.append)
    window.new_project(scans, project)
    wait_until(lambda: ready)
    panels = window.workspace.panels
    image = window.workspace.images()[0]
    annotations = tied.find_layer(window.viewer, image, tied.ANNOTATIONS)
    annotations.data[2, 5:15, 6:20] = 1
    annotations.data[4, 3:9, 3:9] = 1
    saved = []
    panels.finetune.autosaver.saved.connect(saved.append)
    panels.finetune.autosaver.save_now()
    wait_until(lambda: saved)

    # a fine-tune that finishes: the project's current model
    finetune = panels.finetune
    finetune.form.pretrained.value, finetune.form.steps.value, finetune.form.device.value = pretrained, 2, "cpu"
    finetune.finetune_button.click()
    wait_until(lambda: finetune.project.current_model() is not None)

    # a pre-training that is still running when the app dies, after it saved a checkpoint
    form, checkpoints = panels.data.form, []
    form.size.value, form.base_channels.value, form.levels.value = 32, 4, 3
    form.steps.value, form.checkpoint_every.value, form.device.value = 100000, 2, "cpu"
    panels.data.runner.checkpoint.connect(checkpoints.append)
    panels.data.start_button.click()
    wait_until(lambda: checkpoints)
    print(json.dumps({"run": str(panels.data.project.last_run()), "step": checkpoints[0].step,
                      "model": str(finetune.project.current_model()), "child": panels.data.runner._proc.pid,
                      "painted": int(annotations.data.sum())}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def process_gone(pid: int) -> bool:
    """Exited (or a zombie nobody reaps: the container's init may not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


@pytest.fixture
def standalone(qtbot, tmp_path, monkeypatch):
    yield from standalone_windows(qtbot, tmp_path, monkeypatch)


def test_after_a_crash_the_restored_project_has_its_annotations_and_newest_checkpoints(standalone, qtbot, tmp_path,
                                                                                        tiny_pretrained):
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(2):
        write_scan(scans / f"patient{i}_ct.nii.gz", synthetic_ct(i, shape=(6, 24, 28)))
    project = tmp_path / "projects" / "crashed"
    crashed = subprocess.run([sys.executable, "-c", CRASHING_SESSION, str(tmp_path / "config"), str(scans),
                              str(project), str(tiny_pretrained)], capture_output=True, text=True, timeout=400)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    before = json.loads(crashed.stdout.strip().splitlines()[-1])
    run = Path(before["run"])
    qtbot.waitUntil(lambda: process_gone(before["child"]), timeout=30_000)  # the orphaned job ends by itself

    window = standalone()
    assert wait_ready(qtbot, window, window.offer_restore) == str(project.resolve())
    assert "did not close properly" in window.prompts.questions[0]
    panels = window.workspace.panels
    [image] = window.workspace.images()
    annotations = tied.find_layer(window.viewer, image, tied.ANNOTATIONS)
    assert int(annotations.data.sum()) == before["painted"] and annotations.data[2, 5, 6] == 1
    assert panels.finetune.form.pretrained_path() == run / "last.pt"  # the newest pre-training checkpoint
    assert Path(str(panels.export.model.value)) == Path(before["model"])  # the newest fine-tuned model
    assert panels.data.resume_button.isEnabled() and "Resume" in panels.data.status.text()

    steps = []
    panels.data.runner.progress.connect(lambda p: steps.append(p.done) if p.stage == "pretrain" else None)
    panels.data.resume_button.click()  # the interrupted run continues from its checkpoint, not from zero
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=90_000)
    with qtbot.waitSignal(panels.data.runner.finished, timeout=60_000):
        panels.data.cancel_button.click()
    assert steps[0] > before["step"], steps[:3]


def test_a_closed_window_frees_its_panels_viewer_and_layers(standalone, qtbot, tmp_path):
    """Nothing leaked: before start_worker, a worker's callback outlived the window at random (1 run in 2)."""
    scans = tmp_path / "scans"
    scans.mkdir()
    write_scan(scans / "patient0_ct.nii.gz", synthetic_ct(0, shape=(6, 24, 28)))
    for round_ in range(4):
        window = standalone()
        wait_ready(qtbot, window, lambda w=window, r=round_: w.new_project(str(scans), str(tmp_path / f"p{r}")))
        panels = window.workspace.panels
        qtbot.waitUntil(lambda p=panels: p.data.devices_known and p.finetune.devices_known and
                        p.data.scan_result is not None, timeout=60_000)
        refs = [weakref.ref(obj) for obj in (window, panels.data, panels.finetune, window.workspace.images()[0])]
        del window, panels
        standalone.release()
        assert [ref() is None for ref in refs] == [True] * 4, f"round {round_}: {[ref() for ref in refs]}"
