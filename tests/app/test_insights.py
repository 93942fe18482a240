"""What pre-training learnt, in the panels: the map (update, colour, click to open), conflicts, report, fit check."""

from __future__ import annotations

import json
import shutil

import numpy as np
from gcl_app.layers import image_layer_data
from gcl_app.widgets import run_insights
from gcl_app.widgets.data_panel import DataPanel
from gcl_app.widgets.fit_warning import WARNING_STYLE
from qtpy.QtCore import QPoint, Qt

from gcl_engine import api
from gcl_engine.insight.folder_map import write_map_csv
from gcl_engine.insight.results import FitVerdict, FolderMap
from tests.app.qt_helpers import UiThreadWatch


def data_panel(viewer) -> DataPanel:
    _dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Data & pre-training")
    return panel


def own_run(tiny_pretrained, tmp_path):
    """A copy of the tiny run (each test writes its own insight files)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_pretrained.parent, run, ignore=shutil.ignore_patterns("insight", "report"))
    return run


def test_map_updates_off_the_ui_thread_and_a_click_opens_the_volume_at_its_slice(
        make_napari_viewer, qtbot, tiny_pretrained, tmp_path):
    viewer = make_napari_viewer()
    panel = data_panel(viewer)
    insights = panel.insights
    run = own_run(tiny_pretrained, tmp_path)
    with qtbot.waitSignal(insights.map_shown, timeout=30_000):
        panel.project.update(last_run=str(run))  # conflicts come from the metrics at once; no map yet
    assert set(insights.conflicts.tables) == {"img", "pix"}
    assert "fights" in insights.conflicts.sentences["img"].text() or "no pair" in insights.conflicts.sentences[
        "img"].text()
    watch = UiThreadWatch().start()
    with qtbot.waitSignal(insights.map_view.rendered, timeout=180_000):
        insights.update_button.click()
    fmap = insights.fmap
    assert fmap is not None and len(fmap) == 2 * 12 and insights.map_view.picture is not None
    assert not insights.map_view.image.pixmap().isNull()
    choices = [insights.map_view.colour.itemText(i) for i in range(insights.map_view.colour.count())]
    assert choices[0] == "volume" and "position" in choices
    with qtbot.waitSignal(insights.map_view.rendered, timeout=30_000):
        insights.map_view.colour.setCurrentText("position")
    assert set(insights.map_view.picture.colours) == {"1/4", "2/4", "3/4", "4/4"}
    col, row = insights.map_view.picture.pixels[7]
    index = insights.map_view.click_at(col, row)
    assert index is not None
    qtbot.waitUntil(lambda: fmap.volume_id[index] in viewer.layers, timeout=30_000)
    watch.stop()
    assert not watch.entries, watch.report()
    layer = viewer.layers[fmap.volume_id[index]]
    k = int(np.round(layer.world_to_data(viewer.dims.point)[0]))
    assert k == fmap.slice[index]
    n_layers = len(viewer.layers)
    insights.map_view.click_at(col, row)  # the same point again: no second layer
    assert len(viewer.layers) == n_layers
    panel.shutdown()


def fake_big_run(tiny_pretrained, tmp_path, n_volumes=300, n_slices=10):
    """A run folder whose map and metrics are those of a folder of hundreds of volumes."""
    run = own_run(tiny_pretrained, tmp_path)
    rng = np.random.default_rng(0)
    n = n_volumes * n_slices
    ids = [f"vol{v:03d}" for v in range(n_volumes) for _ in range(n_slices)]
    fmap = FolderMap(ids, [str(tmp_path / f"{i}.nii.gz") for i in ids], np.tile(np.arange(n_slices), n_volumes),
                     rng.normal(size=(n, 2)).astype(np.float32),
                     {"volume": ids, "position": [f"{k * 4 // n_slices + 1}/4" for k in range(n_slices)] * n_volumes})
    api.map_csv_path(run).parent.mkdir(parents=True)
    write_map_csv(fmap, api.map_csv_path(run))
    rows = [{"step": s, "img/cos/subject~position": float(np.cos(s)), "img/cos/subject~series": 0.2,
             "img/cos/position~series": -0.1} for s in range(1, 2001)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_a_map_of_hundreds_of_volumes_loads_and_draws_off_the_ui_thread(make_napari_viewer, qtbot, tiny_pretrained,
                                                                         tmp_path):
    viewer = make_napari_viewer()
    panel = data_panel(viewer)
    insights = panel.insights
    run = fake_big_run(tiny_pretrained, tmp_path)
    with UiThreadWatch() as watch, qtbot.waitSignal(insights.map_view.rendered, timeout=60_000):
        panel.project.update(last_run=str(run))
    assert not watch.entries, watch.report()
    assert len(insights.fmap) == 3000 and len(insights.map_view.picture.pixels) == 3000
    assert "position fights series in 100% of steps" in insights.conflicts.sentences["img"].text()
    chosen = []
    insights.map_view.point_chosen.connect(chosen.append)
    col, row = insights.map_view.picture.pixels[1234]
    qtbot.mouseClick(insights.map_view.image, Qt.MouseButton.LeftButton, pos=QPoint(int(round(col)), int(round(row))))
    pixels = insights.map_view.picture.pixels
    assert len(chosen) == 1 and np.allclose(pixels[chosen[0]], pixels[1234], atol=12)  # a neighbour may lie on top
    qtbot.waitUntil(lambda: "Could not open" in insights.status.text(), timeout=30_000)  # made-up scans: no file
    assert "not there any more" in insights.status.text()
    panel.shutdown()


def test_open_report_writes_the_page_and_opens_it(make_napari_viewer, qtbot, tiny_pretrained, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(run_insights.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    viewer = make_napari_viewer()
    panel = data_panel(viewer)
    run = own_run(tiny_pretrained, tmp_path)
    panel.project.update(last_run=str(run))
    with qtbot.waitSignal(panel.insights.report_opened, timeout=180_000) as blocker:
        panel.insights.report_button.click()
    html = blocker.args[0]
    assert opened == [html] and html == str(api.report_path(run))
    assert "Conflict matrix" in open(html, encoding="utf-8").read()
    panel.shutdown()


def test_update_map_without_a_run_says_so(make_napari_viewer):
    panel = data_panel(make_napari_viewer())
    panel.insights.update_button.click()
    assert panel.insights.status.is_error and "No pre-training checkpoint" in panel.insights.status.text()
    panel.shutdown()


def test_annotating_a_scan_checks_that_it_fits_the_pool(make_napari_viewer, qtbot, tiny_pretrained):
    viewer = make_napari_viewer()
    viewer.open_sample("gcl-studio", "ct")
    _dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Annotate & fine-tune")
    panel.project.update(pretrained=str(tiny_pretrained))
    panel.image_chooser.setCurrentText("sample CT")
    with UiThreadWatch() as watch, qtbot.waitSignal(panel.fit_warning.checked, timeout=120_000) as blocker:
        panel.attach()
    assert not watch.entries, watch.report()
    verdict = blocker.args[0]
    assert verdict is not None and verdict.verdict in ("inside", "outside")
    text = panel.fit_warning.text()
    assert f"{verdict.score:.3f}" in text and f"{verdict.threshold:.3f}" in text and not panel.fit_warning.isHidden()
    panel.shutdown()


def test_an_outside_verdict_warns_and_a_late_result_is_dropped(make_napari_viewer, tiny_pretrained):
    viewer = make_napari_viewer()
    _dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Predict & export")
    warning = panel.fit_warning
    outside = FitVerdict(0.41, 0.2, "outside", 0.9, 30, 2, 99.0)
    warning._show(warning._generation, outside)
    assert "outside the pre-training pool" in warning.text() and "0.410 > threshold 0.200" in warning.text()
    assert warning.styleSheet() == WARNING_STYLE
    warning._generation += 1  # the user opened another scan meanwhile
    warning._show(warning._generation - 1, FitVerdict(0.1, 0.2, "inside", 0.0, 30, 2, 99.0))
    assert "outside" in warning.text()
    panel.shutdown()


def test_predicting_a_scan_checks_that_it_fits(make_napari_viewer, qtbot, tiny_pretrained, tiny_model):
    viewer = make_napari_viewer()
    volume = api.load_volume(api.sample_paths()["mr"])
    array, kwargs, _ = image_layer_data(volume)
    viewer.add_image(array, **kwargs)
    _dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Predict & export")
    panel.project.update(pretrained=str(tiny_pretrained))
    panel.model.value = str(tiny_model)
    panel.image_chooser.setCurrentText(volume.meta.volume_id)
    with qtbot.waitSignal(panel.fit_warning.checked, timeout=120_000) as blocker:
        panel.predict_button.click()
    assert blocker.args[0] is not None and "threshold" in panel.fit_warning.text()
    qtbot.waitUntil(lambda: panel.predict_button.isEnabled(), timeout=60_000)
    panel.shutdown()


def test_checkpoints_of_a_running_job_draw_at_most_one_map_a_minute(make_napari_viewer, tiny_pretrained, tmp_path):
    import time

    panel = data_panel(make_napari_viewer())
    insights = panel.insights
    panel.project.update(last_run=str(own_run(tiny_pretrained, tmp_path)))
    insights._last_map = time.monotonic()  # a map has just been drawn
    insights._on_checkpoint()
    assert not insights.runner.running and insights._map_timer.isActive()  # the next waits for the minute
    assert insights._map_timer.remainingTime() > (run_insights.MAP_EVERY_S - 5) * 1000
    panel.shutdown()
    assert not insights._map_timer.isActive()
