"""Annotate & fine-tune panel: paint slices, fine-tune in a child, preview layer, accept, autosave, keys."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gcl_app.widgets import annotation_layers as tied
from gcl_app.widgets.finetune_panel import SHORTCUTS, FinetunePanel
from gcl_app.widgets.panel_actions import action_name
from gcl_app.widgets.slices import current_slice, show_slice

from gcl_engine import api
from tests.app.qt_helpers import UiThreadWatch, press_shortcut

LIVER = 5
PAINTED = (8, 15, 22)


def open_sample(viewer) -> FinetunePanel:
    viewer.open_sample("gcl-studio", "ct")
    _dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Annotate & fine-tune")
    panel.image_chooser.setCurrentText("sample CT")
    return panel


def paint_liver(panel: FinetunePanel, viewer) -> np.ndarray:
    """The user's three painted slices (taken from the reference labels, as a careful user would paint)."""
    reference = viewer.layers["reference labels"].data
    annotations = panel.attach()
    panel.classes.set_names(["background", "liver"])
    for k in PAINTED:
        annotations.data[k] = (reference[k] == LIVER).astype(annotations.data.dtype)
    annotations.refresh()
    panel.autosaver.mark_dirty()
    return annotations


def tiny_form(panel: FinetunePanel, pretrained) -> None:
    panel.form.pretrained.value = str(pretrained)
    panel.form.steps.value, panel.form.preview_every.value, panel.form.device.value = 4, 2, "cpu"


def test_painted_slices_fine_tune_into_a_preview(make_napari_viewer, qtbot, tiny_pretrained):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    annotations = paint_liver(panel, viewer)
    tiny_form(panel, tiny_pretrained)
    show_slice(viewer, annotations, 15)
    assert current_slice(viewer, annotations) == 15
    previews = []
    panel.runner.preview.connect(previews.append)
    qtbot.waitUntil(lambda: panel.devices_known, timeout=60_000)  # torch is imported once the panel opens
    with UiThreadWatch() as watch, qtbot.waitSignal(panel.preview_updated, timeout=90_000,
                                                    check_params_cb=lambda kind: kind == "volume"):
        panel.finetune_button.click()
    assert not watch.entries, watch.report()
    preview = tied.find_layer(viewer, panel.image, tied.PREVIEW)
    assert preview is not None and preview.data.shape == annotations.data.shape
    assert previews and previews[-1].slices == [15] and previews[-1].masks[0].shape == annotations.data.shape[1:]
    assert panel.project.current_model() is not None
    steps, losses = panel.curve.series["loss"]  # the fine-tuning curve in the panel
    assert steps == sorted(steps) and steps[-1] == 4 and all(np.isfinite(losses))
    assert not panel.heldout  # a first round has no earlier model to check
    assert panel.project.get("model_classes") == ["background", "liver"]
    saved = panel.project.annotation_path("example_ct_sm")
    assert saved.is_file() and json.loads(saved.with_name("example_ct_sm.labels.json").read_text())["1"] == "liver"

    # accept the predicted slice 10 into the annotations, then fine-tune again from the current weights
    show_slice(viewer, annotations, 10)
    panel.accept_button.click()
    np.testing.assert_array_equal(annotations.data[10], panel.previews.values[10])
    assert not preview.data[10].any()  # a painted (accepted) slice shows the annotation alone, no preview over it
    first_model = panel.project.current_model()
    with qtbot.waitSignal(panel.preview_updated, timeout=90_000, check_params_cb=lambda kind: kind == "volume"):
        panel.finetune()
    config = json.loads(api.job_config_path("finetune", panel.project.job_dir("finetune")).read_text())
    assert config["init_model"] == str(first_model) and config["preview_slices"] == [10]
    assert panel.project.current_model() != first_model
    # the second round checked the first model on the slice accepted since (its own prediction: Dice 1)
    assert len(panel.heldout) == 1 and panel.heldout[0][1] == 1 and panel.heldout[0][0] > 0.99
    assert "Dice 1.00" in panel.heldout_label.text()
    assert panel.curve.series["loss"][0][0] == 1  # the curve restarted with the round
    panel.shutdown()


def test_annotations_come_back_after_a_restart(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    annotations = paint_liver(panel, viewer)
    panel.classes.set_names(["background", "liver", "spleen"])
    annotations.data[3, 10:20, 10:20] = 2
    with qtbot.waitSignal(panel.autosaver.saved, timeout=30_000):
        panel.autosaver.save_now()
    painted = np.array(annotations.data)
    panel.shutdown()
    viewer.layers.remove(annotations)

    fresh = FinetunePanel(viewer, panel.project)  # a new session on the same project folder
    fresh.image_chooser.setCurrentText("sample CT")
    restored = fresh.attach()
    np.testing.assert_array_equal(restored.data, painted)
    assert fresh.classes.names() == ["background", "liver", "spleen"]
    fresh.shutdown()
    fresh.deleteLater()


def test_a_names_file_left_from_an_interrupted_save_is_not_believed(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    annotations = paint_liver(panel, viewer)
    with qtbot.waitSignal(panel.autosaver.saved, timeout=30_000):
        panel.autosaver.save_now()  # liver = 1, and its names file
    context = panel._save_context()
    annotations.data[3, 10:20, 10:20] = 2
    painted = np.array(annotations.data)
    names_file = panel.project.annotation_path(context["volume_id"]).with_name("example_ct_sm.labels.json")
    old_names = names_file.read_bytes()
    panel.project.save_annotations(painted, context["geometry"], context["volume_id"],
                                   ["background", "kidney", "liver"])
    names_file.write_bytes(old_names)  # as if the save had stopped between the label map and its names
    panel.shutdown()
    viewer.layers.remove(annotations)

    fresh = FinetunePanel(viewer, panel.project)
    fresh.image_chooser.setCurrentText("sample CT")
    restored = fresh.attach()
    np.testing.assert_array_equal(restored.data, painted)  # nothing painted is lost
    assert fresh.classes.names() == ["background", "class 1", "class 2"]  # never "liver" on the kidney
    assert fresh.status.is_error and "example_ct_sm.labels.json does not belong" in fresh.status.text()
    fresh.shutdown()
    fresh.deleteLater()


def test_autosave_runs_on_its_timer_after_painting(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    panel.autosaver.set_interval(1)
    annotations = panel.attach()
    annotations.paint((12, 50, 60), 1)  # a brush stroke through napari's own painting API
    assert panel.autosaver.dirty
    with qtbot.waitSignal(panel.autosaver.saved, timeout=10_000):
        pass
    assert panel.project.annotation_path("example_ct_sm").is_file()
    panel.shutdown()


def test_shortcuts_move_and_are_listed_in_tooltips(make_napari_viewer):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    annotations = paint_liver(panel, viewer)
    show_slice(viewer, annotations, 14)
    assert press_shortcut(viewer, SHORTCUTS["next"])
    assert current_slice(viewer, annotations) == 16  # 15 is painted
    assert SHORTCUTS["next"] in panel.next_button.toolTip()
    assert SHORTCUTS["finetune"] in panel.finetune_button.toolTip()
    assert SHORTCUTS["accept"] in panel.accept_button.toolTip()
    panel.shutdown()


@pytest.fixture
def restore_default_keys():
    """napari's action manager is one per process: give the panel's actions their default keys back."""
    yield
    from napari.utils.action_manager import action_manager

    for short, key in SHORTCUTS.items():
        action_manager.unbind_shortcut(action_name(short))
        action_manager.bind_shortcut(action_name(short), key)


def test_a_rebound_shortcut_works_and_the_buttons_show_it(make_napari_viewer, restore_default_keys):
    from napari.utils.action_manager import action_manager

    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    annotations = paint_liver(panel, viewer)
    show_slice(viewer, annotations, 14)
    assert action_name("next") in action_manager._actions  # listed in Preferences > Shortcuts
    # what napari's Preferences > Shortcuts does when the user types a new key for the action
    action_manager.unbind_shortcut(action_name("next"))
    action_manager.bind_shortcut(action_name("next"), "Shift-M")
    assert "Shift-M" in panel.next_button.text() and "Shift-N" not in panel.next_button.text()
    assert not press_shortcut(viewer, "Shift-N")  # the old key is free for the user's other uses
    assert press_shortcut(viewer, "Shift-M")
    assert current_slice(viewer, annotations) == 16
    panel.shutdown()


def test_a_key_saved_in_napari_settings_wins_over_the_default(make_napari_viewer, restore_default_keys):
    from napari.settings import get_settings

    viewer = make_napari_viewer()
    shortcuts = dict(get_settings().shortcuts.shortcuts)
    shortcuts[action_name("finetune")] = ["Shift-T"]
    get_settings().shortcuts.shortcuts = shortcuts
    viewer.window._qt_viewer._bind_shortcuts()  # what a napari start does with the saved settings
    panel = open_sample(viewer)
    assert "Shift-T" in panel.finetune_button.text() and "Shift-F" not in panel.finetune_button.text()
    calls = []
    panel.finetune = lambda: calls.append("finetune")
    panel._bind_keys()  # the handlers read the panel's methods when registered
    assert press_shortcut(viewer, "Shift-T") and calls == ["finetune"]
    panel.shutdown()
    assert press_shortcut(viewer, "Shift-T") and calls == ["finetune"]  # closed panel: the key does nothing


def test_class_colours_apply_to_the_annotation_layer(make_napari_viewer):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    annotations = panel.attach()
    panel.classes.set_colour(1, (0, 0, 255))
    np.testing.assert_allclose(annotations.colormap.map(np.array([1]))[0], [0, 0, 1, 1])
    panel.shutdown()


def test_fine_tune_refuses_labels_beyond_the_class_list(make_napari_viewer):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    annotations = panel.attach()
    panel.classes.set_names(["background", "liver"])
    annotations.data[5, 0:4, 0:4] = 3
    panel.finetune()
    assert panel.status.is_error and "Label 3" in panel.status.text() and not panel.runner.running
    panel.shutdown()


def test_accepting_an_unpredicted_slice_never_wipes_annotations(make_napari_viewer):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    annotations = paint_liver(panel, viewer)
    show_slice(viewer, annotations, 15)
    before = np.array(annotations.data[15])
    panel.accept_button.click()
    assert panel.status.is_error and "no prediction" in panel.status.text()
    np.testing.assert_array_equal(annotations.data[15], before)
    panel.shutdown()


def test_choosing_another_image_ties_the_actions_to_it(make_napari_viewer, oblique_nifti):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    panel.attach()
    [other] = viewer.open(str(oblique_nifti), plugin="gcl-studio")
    panel.image_chooser.setCurrentText(other.name)
    panel.next_button.click()
    assert f"{other.name} annotations" in viewer.layers and panel.image.name == other.name
    assert viewer.layers[f"{other.name} annotations"].data.shape == other.data.shape
    panel.shutdown()
