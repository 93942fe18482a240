"""Data & pre-training panel: scan table, meta-label switches, a tiny pre-training with cancel and resume."""

from __future__ import annotations

from pathlib import Path

from gcl_app.widgets.data_panel import DataPanel
from qtpy.QtCore import Qt

from gcl_engine import api
from tests.app.qt_helpers import UiThreadWatch
from tests.app.synthetic import TINY


def open_panel(viewer) -> DataPanel:
    _dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Data & pre-training")
    return panel


def scan(qtbot, panel: DataPanel, folder) -> None:
    panel.folder.value = str(folder)
    panel.scan_button.click()
    qtbot.waitUntil(lambda: panel.scan_result is not None, timeout=30_000)


def make_tiny(panel: DataPanel, steps: int) -> None:
    form = panel.form
    form.size.value, form.base_channels.value, form.levels.value = TINY["size"], TINY["base_channels"], TINY["levels"]
    form.steps.value, form.checkpoint_every.value, form.device.value = steps, 1000, "cpu"


def test_scan_lists_volumes_skipped_files_and_meta_labels(make_napari_viewer, qtbot, scan_folder):
    panel = open_panel(make_napari_viewer())
    scan(qtbot, panel, scan_folder)
    table = panel.scan_view.volumes
    rows = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]
    assert sorted(r[0] for r in rows if r[4] == "ok") == ["subjA_ct", "subjB_ct", "subjC_ct"]
    skipped = [r for r in rows if r[4].startswith("skipped")]
    assert len(skipped) == 1 and skipped[0][0] == "notes.nii.gz" and len(skipped[0][4]) > len("skipped: ")
    meta = panel.scan_view.meta
    names = [meta.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(meta.rowCount())]  # engine keys
    assert "subject" in names and "position" in names
    assert meta.item(names.index("subject"), 1).text() == "Patient"  # the words shown
    usable = panel.scan_view.selected_meta_labels()
    assert "subject" in usable
    panel.scan_view.set_meta_label("subject", False)
    assert "subject" not in panel.scan_view.selected_meta_labels()
    phase_row = names.index("phase")  # no cardiac phases in these scans
    assert meta.item(phase_row, 0).flags() & Qt.ItemFlag.ItemIsEnabled == Qt.ItemFlag.NoItemFlags
    n_slices = sum(v.n_slices for v in panel.scan_result.volumes)
    assert meta.item(phase_row, 3).text() == f"0 / {n_slices} slices"  # unknown everywhere: out of the loss
    assert meta.item(names.index("subject"), 3).text() == f"{n_slices} / {n_slices} slices"
    panel.shutdown()


def test_presets_fill_the_form_and_edits_make_it_custom(make_napari_viewer):
    panel = open_panel(make_napari_viewer())
    panel.form.preset.value = "full (GPU)"
    assert panel.form.size.value == 224 and panel.form.base_channels.value == 32
    panel.form.steps.value = 17
    assert panel.form.preset.value == "custom"
    assert panel.form.config("f", "o", ("subject",)).preprocess.field_of_view_mm is None  # 0: whole slice
    panel.form.field_of_view.value = 400
    assert panel.form.config("f", "o", ("subject",)).preprocess.field_of_view_mm == 400.0
    panel.shutdown()


def test_tiny_pretraining_progress_cancel_resume(make_napari_viewer, qtbot, scan_folder):
    panel = open_panel(make_napari_viewer())
    scan(qtbot, panel, scan_folder)
    make_tiny(panel, steps=3000)
    qtbot.waitUntil(lambda: panel.devices_known, timeout=60_000)  # torch is imported once the panel opens
    watch = UiThreadWatch().start()
    panel.start_button.click()
    assert not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: panel.progress.text.text().startswith("pretrain") and panel.progress.bar.value() >= 3,
                    timeout=90_000)
    assert "left" in panel.progress.text.text()  # the ETA
    with qtbot.waitSignal(panel.runner.finished, timeout=60_000):
        panel.cancel_button.click()
    watch.stop()
    assert not watch.entries, watch.report()
    run = panel.project.last_run()
    assert (run / "last.pt").is_file() and panel.project.get("pretrained") == str(run / "last.pt")
    with qtbot.waitSignal(panel.plot.rendered, timeout=10_000):
        panel.plot.flush()
    assert not panel.plot.image.pixmap().isNull()
    assert "loss" in panel.plot.series and any(k.endswith("conflict_rate") for k in panel.plot.series)
    assert any("/loss/" in k for k in panel.plot.series)
    stopped = max(panel.plot.series["loss"][0])
    assert panel.resume_button.isEnabled() and panel.start_button.isEnabled()

    panel.resume_button.click()
    qtbot.waitUntil(lambda: max(panel.plot.series["loss"][0]) > stopped + 1, timeout=90_000)
    assert panel.plot.series["loss"][0][: stopped] == list(range(1, stopped + 1))  # history reloaded
    with qtbot.waitSignal(panel.runner.finished, timeout=60_000) as blocker:
        panel.cancel_button.click()
    assert blocker.args[0].status == "cancelled" and blocker.args[0].result["steps"] > stopped
    panel.shutdown()


def test_a_crashing_job_is_shown_and_the_panel_keeps_working(make_napari_viewer, qtbot, tmp_path):
    panel = open_panel(make_napari_viewer())
    panel.folder.value = str(tmp_path / "nowhere")
    with qtbot.waitSignal(panel.runner.failed, timeout=60_000):
        panel.start_button.click()
    assert panel.status.is_error and "exit code" in panel.status.text()
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()
    panel.shutdown()


def test_the_scan_fills_the_cache_the_job_reads(make_napari_viewer, qtbot, scan_folder, monkeypatch):
    """Each file is read once from the data panel to the slice cache: the job's scan is a cache hit."""
    import gcl_engine.data.scan as scan_module

    reads: list[str] = []
    real = scan_module.load_volumes
    monkeypatch.setattr(scan_module, "load_volumes", lambda source: reads.append(source.path) or real(source))
    panel = open_panel(make_napari_viewer())
    make_tiny(panel, steps=5)
    scan(qtbot, panel, scan_folder)
    assert sorted(Path(p).name for p in reads) == ["subjA_ct.nii.gz", "subjB_ct.nii.gz", "subjC_ct.nii.gz"]
    reads.clear()
    cfg = panel.form.config(str(scan_folder), str(panel.project.new_run_dir("pretrain")), ("subject",),
                            cache=panel.job_cache())
    again = api.scan_folder(cfg.folder, cache=cfg.cache, preprocess=cfg.preprocess,
                            n_partitions=cfg.position_partitions)  # what the job's PretrainData runs
    assert reads == [] and len(again.volumes) == 3  # no pixel read: every volume came from the cache
    assert all(v.cache_key for v in panel.scan_result.volumes)
    panel.shutdown()
