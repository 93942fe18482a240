"""A clinician's first hour in napari (issue 16): what a new user met on screen, each checked as they meet it.

The panels are opened the way a user opens them, from napari's menus (``menu_action``), not through
``add_plugin_dock_widget``: the menus are where the layout, the titles and the first-open freeze were seen.
"""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication, QDockWidget, QLabel, QTabBar

from tests.app.qt_helpers import menu_action

PANELS = {"data": "Data & pre-training", "finetune": "Annotate & fine-tune", "export": "Predict & export"}
LAPTOP = (1366, 768)


def open_panel(viewer, qtbot, key: str):
    """Plugins > GCL Studio > <panel>, as a user clicks it; the panel once docked (and tabbed)."""
    title = f"{PANELS[key]} (GCL Studio)"
    menu_action(viewer.window._qt_window, "Plugins", "GCL Studio", title).trigger()
    qtbot.waitUntil(lambda: title in viewer.window.dock_widgets, timeout=10_000)
    panel = viewer.window.dock_widgets[title]
    QApplication.processEvents()  # the panel joins the tab group once docked
    return panel


def shown_text(text: str) -> str:
    """What a tab or menu shows for ``text``: "&&" is a literal "&", a single "&" is a hidden mnemonic mark."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


@pytest.mark.parametrize("order", [("data", "finetune", "export"), ("export", "finetune", "data")])
def test_all_three_panels_from_the_menu_fit_a_laptop_screen(make_napari_viewer, qtbot, order):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    panels = [open_panel(viewer, qtbot, key) for key in order]
    hint = window.minimumSizeHint().expandedTo(window.minimumSize())
    assert hint.width() <= LAPTOP[0] and hint.height() <= LAPTOP[1], (hint.width(), hint.height())
    window.resize(*LAPTOP)
    QApplication.processEvents()
    assert window.height() <= LAPTOP[1]
    # one tab group: the canvas keeps the screen's height, the newest panel is the tab in front
    docks = [panel.parent() for panel in panels]
    assert all(isinstance(dock, QDockWidget) for dock in docks)
    assert set(window.tabifiedDockWidgets(docks[0])) >= set(docks[1:])
    assert not docks[-1].visibleRegion().isEmpty()
    for panel in panels:
        panel.shutdown()


def test_tab_titles_show_the_ampersand_and_the_sample_is_named_once(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    panels = [open_panel(viewer, qtbot, key) for key in PANELS]
    tabs = [bar.tabText(i) for bar in window.findChildren(QTabBar) for i in range(bar.count())]
    shown = {shown_text(t) for t in tabs}
    assert {f"{title} (GCL Studio)" for title in PANELS.values()} <= shown, tabs
    entries = [shown_text(a.text()) for a in _sample_actions(window)]
    assert "Abdominal CT with reference labels (GCL Studio)" in entries, entries
    for panel in panels:
        panel.shutdown()


def _sample_actions(window):
    file_menu = menu_action(window, "File", "Open Sample").menu()
    file_menu.aboutToShow.emit()
    found = []
    for action in file_menu.actions():
        if action.menu() is not None:
            action.menu().aboutToShow.emit()
            found += action.menu().actions()
        else:
            found.append(action)
    return found


# --- painting and previews ---------------------------------------------------------------------------

def finetune_on_sample(viewer, qtbot):
    """File > Open Sample, then Plugins > Annotate & fine-tune on the sample CT, attached."""
    viewer.open_sample("gcl-studio", "ct")
    panel = open_panel(viewer, qtbot, "finetune")
    panel.image_chooser.setCurrentText("sample CT")
    panel.classes.set_names(["background", "liver"])
    return panel, panel.attach()


def stream_preview(panel, slices, value=1):
    """What a running fine-tune sends: predicted masks of some slices (a square of ``value``)."""
    from gcl_engine import api

    shape = panel.image.data.shape[1:]
    masks = []
    for _ in slices:
        mask = np.zeros(shape, np.uint8)
        mask[10:30, 10:30] = value
        masks.append(mask)
    panel.previews.begin(panel.image)
    panel.runner.preview.emit(api.Preview(step=2, slices=list(slices), masks=masks))
    panel.previews.flush()
    QApplication.processEvents()


def test_the_annotation_layer_does_not_start_in_paint_mode(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    panel, annotations = finetune_on_sample(viewer, qtbot)
    assert annotations.mode == "pan_zoom"  # the click that focuses the canvas paints nothing
    assert annotations.selected_label == 1
    assert "press P" in panel.hint.text() and "learned as background" in panel.hint.text()
    assert "counts as complete" in panel.hint.toolTip()
    panel.shutdown()


def test_the_preview_is_an_outline_hidden_under_painted_slices(make_napari_viewer, qtbot):
    from gcl_app.widgets import annotation_layers as tied
    from gcl_app.widgets.slice_strip import ACCEPTED, EMPTY, PAINTED, PREDICTED

    viewer = make_napari_viewer(show=True)
    panel, annotations = finetune_on_sample(viewer, qtbot)
    annotations.data[4, 40:50, 40:50] = 1
    annotations.refresh()
    stream_preview(panel, [4, 6, 8])
    preview = tied.find_layer(viewer, panel.image, tied.PREVIEW)
    assert preview.contour > 0 and annotations.contour == 0  # outline over filled paint
    assert not preview.data[4].any()  # painted: the annotation alone is shown
    assert preview.data[6].any() and preview.data[8].any()
    from gcl_app.widgets.slices import show_slice

    show_slice(viewer, annotations, 6)
    panel.accept_button.click()
    panel._show_annotated()
    assert not preview.data[6].any() and annotations.data[6].any()
    states = panel.strip.states
    assert (states[4], states[6], states[8], states[0]) == (PAINTED, ACCEPTED, PREDICTED, EMPTY)
    annotations.data[4] = 0  # the user erases slice 4: the prediction under it comes back
    panel._show_annotated()
    assert preview.data[4].any() and panel.strip.states[4] == PREDICTED
    from tests.app.qt_helpers import press_shortcut

    assert press_shortcut(viewer, "Shift-V")  # the preview toggle key
    assert not preview.visible
    panel.toggle_preview()
    assert preview.visible
    panel.strip.clicked.emit(8)
    from gcl_app.widgets.slices import current_slice

    assert current_slice(viewer, annotations) == 8
    panel.shutdown()


def test_painting_on_the_preview_is_refused_with_a_warning(make_napari_viewer, qtbot):
    from gcl_app.widgets import annotation_layers as tied

    viewer = make_napari_viewer(show=True)
    panel, annotations = finetune_on_sample(viewer, qtbot)
    stream_preview(panel, [6])
    preview = tied.find_layer(viewer, panel.image, tied.PREVIEW)
    before = np.array(preview.data)
    preview.editable = True  # whatever made it editable (napari does on every data change)
    preview.paint((12, 50, 60), 1, refresh=True)
    assert panel.status.is_error and "ignored by fine-tuning" in panel.status.text()
    # the stroke is gone, the prediction is intact
    qtbot.waitUntil(lambda: np.array_equal(preview.data, before), timeout=5_000)
    assert viewer.layers.selection.active.name == annotations.name and not preview.editable
    panel.shutdown()


def test_the_annotated_slices_line_follows_the_chosen_image(make_napari_viewer, qtbot, oblique_nifti):
    viewer = make_napari_viewer(show=True)
    panel, annotations = finetune_on_sample(viewer, qtbot)
    annotations.data[3, 5:9, 5:9] = 1
    panel._show_annotated()
    assert "3" in panel.annotated_label.text().split(":")[-1]
    [other] = viewer.open(str(oblique_nifti), plugin="gcl-studio")
    panel.image_chooser.setCurrentText(other.name)
    assert other.name in panel.annotated_label.text() and panel.annotated_label.text().endswith("none yet")
    panel.image_chooser.setCurrentText("sample CT")
    assert panel.annotated_label.text().endswith(": 3")
    panel.shutdown()


def test_the_status_says_the_training_process_is_starting(make_napari_viewer, qtbot, monkeypatch, tmp_path):
    viewer = make_napari_viewer(show=True)
    panel, annotations = finetune_on_sample(viewer, qtbot)
    annotations.data[3, 5:9, 5:9] = 1
    started = []
    monkeypatch.setattr(panel.runner, "start", lambda *args, **kwargs: started.append(args) or tmp_path)
    with qtbot.waitSignal(panel.autosaver.saved, timeout=30_000):
        panel.finetune()
    qtbot.waitUntil(lambda: bool(started), timeout=10_000)
    assert "starting the training process" in panel.progress.text.text()
    assert "saving annotations" not in panel.progress.text.text()
    panel.shutdown()


@pytest.mark.parametrize("key", ["finetune", "export", "data"])
def test_opening_the_first_panel_imports_no_heavy_library_on_the_ui_thread(key, tmp_path):
    """The first panel froze napari for seconds: torch (and what only other panels need) load off the UI thread."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("first_panel_imports.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(script), f"{PANELS[key]} (GCL Studio)"], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["devices_known"] is (None if key == "export" else True)
    on_ui = {name: thread for name, thread in report["first"].items() if thread == "MainThread"}
    assert not on_ui, f"imported on the UI thread while the panel opened: {on_ui} ({report})"
    if key != "export":
        assert "torch" in report["first"]  # the device probe did import it: in a worker
    if key == "data":
        assert "matplotlib" in report["first"]  # the loss plot's first render did: in its worker


# --- opening scans -----------------------------------------------------------------------------------

def test_file_open_reads_a_scan_without_asking_which_reader(make_napari_viewer, qtbot, oblique_nifti):
    from gcl_app.layers import GEOMETRY_KEY

    viewer = make_napari_viewer(show=True)
    panel = open_panel(viewer, qtbot, "finetune")
    # File > Open names no plugin: napari's preference decides, else it asks "Choose reader"
    [layer] = viewer.open(str(oblique_nifti), plugin=None)
    assert GEOMETRY_KEY in layer.metadata  # read by GCL Studio, in patient space
    panel.shutdown()


def test_a_corrupt_scan_is_named_in_the_panel(make_napari_viewer, qtbot, scan_folder):
    from napari.errors import ReaderPluginError

    viewer = make_napari_viewer(show=True)
    panel = open_panel(viewer, qtbot, "finetune")
    with pytest.raises(ReaderPluginError):
        viewer.open(str(scan_folder / "notes.nii.gz"), plugin=None)
    qtbot.waitUntil(lambda: "notes.nii.gz" in panel.status.text(), timeout=5_000)
    assert panel.status.is_error and panel.status.text().startswith("Could not open notes.nii.gz: ")
    panel.shutdown()


def test_a_second_scan_is_brought_into_view_with_its_own_classes(make_napari_viewer, qtbot, oblique_nifti):
    viewer = make_napari_viewer(show=True)
    panel, annotations = finetune_on_sample(viewer, qtbot)
    panel.classes.set_names(["background", "liver", "spleen"])
    [other] = viewer.open(str(oblique_nifti), plugin=None)
    qtbot.waitUntil(lambda: panel.image_chooser.currentText() == other.name, timeout=5_000)
    # the camera shows the new scan (its centre in the middle of the canvas), at its middle slice
    low, high = np.asarray(other.extent.world)
    centre = (low + high) / 2
    displayed = list(viewer.dims.displayed)
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], centre[displayed], atol=1.0)
    shape = np.asarray(other.data.shape, float)
    middle = other.data_to_world([shape[0] // 2, (shape[1] - 1) / 2, (shape[2] - 1) / 2])
    step = viewer.dims.range[0].step  # the slider snaps to its grid
    assert viewer.dims.point[0] == pytest.approx(middle[0], abs=step)  # at the new scan's middle
    assert panel.image_chooser.currentText() == other.name
    panel.attach()
    assert panel.classes.names() == ["background", "foreground"]  # not the first scan's list
    panel.classes.set_names(["background", "tumour"])
    panel.image_chooser.setCurrentText("sample CT")
    panel.attach()
    assert panel.classes.names() == ["background", "liver", "spleen"]
    panel.image_chooser.setCurrentText(other.name)
    panel.attach()
    assert panel.classes.names() == ["background", "tumour"]
    panel.shutdown()


# --- jobs and closing --------------------------------------------------------------------------------

def tiny_pretraining(panel, folder, steps):
    from tests.app.synthetic import TINY

    form = panel.form
    panel.folder.value = str(folder)
    form.size.value, form.base_channels.value, form.levels.value = TINY["size"], TINY["base_channels"], TINY["levels"]
    form.steps.value, form.checkpoint_every.value, form.device.value = steps, 1000, "cpu"


def test_resume_is_not_offered_for_a_finished_run(make_napari_viewer, qtbot, scan_folder):
    viewer = make_napari_viewer(show=True)
    panel = open_panel(viewer, qtbot, "data")
    tiny_pretraining(panel, scan_folder, steps=2)
    with qtbot.waitSignal(panel.runner.finished, timeout=120_000) as blocker:
        panel.start_button.click()
    assert blocker.args[0].status == "completed"
    assert not panel.resume_button.isEnabled() and panel.start_button.isEnabled()
    panel.resume()
    assert panel.status.is_error and not panel.runner.running  # asked anyway: refused, no process started
    panel.shutdown()


def test_closing_napari_during_pretraining_keeps_a_checkpoint_and_registers_it(make_napari_viewer, qtbot,
                                                                               scan_folder):
    from gcl_app.widgets.closing import GUARD_ATTR

    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    panel = open_panel(viewer, qtbot, "data")
    tiny_pretraining(panel, scan_folder, steps=3000)
    qtbot.waitUntil(lambda: getattr(window, GUARD_ATTR, None) is not None, timeout=5_000)
    guard = getattr(window, GUARD_ATTR)
    questions = []
    guard.ask = lambda title, text: questions.append(text) or False  # first: the user keeps the window
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.progress.text.text().startswith("pretrain") and panel.progress.bar.value() >= 3,
                    timeout=120_000)
    window.close()
    assert questions and panel.runner.running and window.isVisible()  # refused: nothing stopped
    assert "no checkpoint exists yet" in questions[0] and "at step" in questions[0]
    guard.ask = lambda title, text: questions.append(text) or True
    viewer.window.close()  # napari's own close (its teardown, then the Qt window's close event)
    assert not window.isVisible()
    run = panel.project.last_run()
    assert not panel.runner.running
    assert (run / "last.pt").is_file() and panel.project.get("pretrained") == str(run / "last.pt")


# --- predict & export, words a clinician reads ---------------------------------------------------------

def test_a_prediction_wears_the_class_colours_and_the_export_form_is_ready(make_napari_viewer, qtbot, tiny_model):
    from gcl_app.widgets import annotation_layers as tied

    viewer = make_napari_viewer(show=True)
    panel, annotations = finetune_on_sample(viewer, qtbot)
    panel.classes.set_colour(1, (0, 0, 255))
    stream_preview(panel, [6])
    export = open_panel(viewer, qtbot, "export")
    assert export.mask_path.value and str(export.mask_path.value).endswith(".nii.gz")  # filled from the start
    labels = {w.text() for w in export.findChildren(QLabel)}
    assert {"Image", "Labels layer"} <= labels
    export.model.value = str(tiny_model)
    export.image_chooser.setCurrentText("sample CT")
    export.predict_button.click()
    qtbot.waitUntil(lambda: "sample CT prediction" in viewer.layers, timeout=60_000)
    qtbot.waitUntil(lambda: "prediction" in export.status.text(), timeout=10_000)
    prediction = viewer.layers["sample CT prediction"]
    np.testing.assert_allclose(prediction.colormap.map(np.array([1]))[0], [0, 0, 1, 1])  # liver as painted
    assert not tied.find_layer(viewer, panel.image, tied.PREVIEW).visible  # not drawn over the preview
    assert str(export.mask_path.value).endswith("sample_CT_prediction.nii.gz")
    export.shutdown()
    panel.shutdown()


def test_the_scan_table_reads_as_words_with_numbers_in_order(make_napari_viewer, qtbot):
    from gcl_app.widgets.loss_plot import LossPlot
    from gcl_app.widgets.meta_words import metric_name
    from gcl_app.widgets.scan_view import SHAPE_COLUMN, VISIBLE_ROWS

    from gcl_engine import api

    viewer = make_napari_viewer(show=True)
    panel = open_panel(viewer, qtbot, "data")
    panel.folder.value = str(api.sample_paths()["scans"])  # five scans: CT, MR, DICOM series, a cardiac cine
    panel.scan_button.click()
    qtbot.waitUntil(lambda: panel.scan_result is not None and panel.scan_view.filled, timeout=60_000)
    view = panel.scan_view
    table = view.volumes
    assert table.minimumHeight() >= VISIBLE_ROWS * table.verticalHeader().defaultSectionSize()
    metrics = table.fontMetrics()
    for row in range(table.rowCount()):
        shape = table.item(row, SHAPE_COLUMN).text()
        assert table.columnWidth(SHAPE_COLUMN) >= metrics.horizontalAdvance(shape), shape  # never cut
    meta = view.meta
    rows = {meta.item(r, 0).data(Qt.ItemDataRole.UserRole): r for r in range(meta.rowCount())}
    position = rows["position"]
    assert meta.item(position, 1).text() == "Body height" and meta.item(position, 2).text() == "20 height bands"
    counts = meta.item(position, 4).toolTip().split(", ")
    keys = [int(c.split(":")[0]) for c in counts if ":" in c]
    assert keys == sorted(keys) and keys[:3] == [0, 1, 2]  # 0, 1, 2 … 10, never 0, 1, 10, 11
    assert meta.isRowHidden(rows["series"]) and "Scan series groups the slices exactly as Patient" in \
        view.duplicate_note.text()  # one scan per patient here: series repeats the patient row
    assert not meta.isRowHidden(rows["subject"])
    assert metric_name("img/conflict_rate") == "conflicts (whole slice)"
    assert metric_name("pix/loss/phase") == "Time phase (per pixel)" and metric_name("loss") == "total loss"
    plot = panel.plot
    assert isinstance(plot, LossPlot) and "lower is better" in panel.plot_note.text()
    panel.shutdown()


def test_the_annotate_defaults_are_the_engines_interactive_recipe(make_napari_viewer, qtbot, tmp_path):
    from gcl_engine import api

    viewer = make_napari_viewer(show=True)
    panel = open_panel(viewer, qtbot, "finetune")
    form = panel.form
    assert form.steps.value == api.RECIPE.steps_first
    first = form.config("img", "lab", "out", ("background", "liver"), None, None, 0)
    assert first.steps == api.RECIPE.steps_first
    assert (first.preprocess, first.model) == (api.RECIPE.preprocess, api.RECIPE.model)  # no encoder: the recipe's
    continued = form.config("img", "lab", "out", ("background", "liver"), str(tmp_path / "m.pt"),
                            {"preprocess": api.to_dict(first.preprocess), "model": api.to_dict(first.model)}, 0)
    assert continued.steps == api.RECIPE.steps_continue and form.steps.value == api.RECIPE.steps_continue
    form.steps.value = 37  # the user's own number wins, first or continued
    assert form.config("img", "lab", "out", ("background", "liver"), None, None, 0).steps == 37
    panel.shutdown()
