"""Annotation aids in the annotate panel: the instant first guess and the suggested next slice (Shift-N)."""

from __future__ import annotations

import numpy as np
from gcl_app.widgets import annotation_layers as tied
from gcl_app.widgets.slices import current_slice, next_unannotated, show_slice

from tests.app.test_finetune_panel import open_sample, paint_liver


def painted_with_a_guess(viewer, qtbot):
    """The sample in the panel, three liver slices painted (8, 15, 22), the first guess between them shown."""
    panel = open_sample(viewer)
    annotations = paint_liver(panel, viewer)
    panel._show_annotated()  # what the paint events' throttle calls
    qtbot.waitUntil(lambda: bool(panel.previews.interpolated), timeout=30_000)
    return panel, annotations


def test_two_painted_slices_show_the_interpolation_between_them_at_once(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    panel, annotations = painted_with_a_guess(viewer, qtbot)
    assert panel.previews.interpolated == set(range(9, 15)) | set(range(16, 22))
    assert "First guess" in panel.status.text() and "interpolation" in panel.status.text()
    preview = tied.find_layer(viewer, panel.image, tied.PREVIEW)
    assert (preview.data[12] == 1).sum() > 100  # the liver between the painted slices
    assert not preview.data[15].any() and not preview.data[3].any()  # not on painted slices, not outside
    guessed = np.array(preview.data[12])
    show_slice(viewer, annotations, 12)
    panel.accept_button.click()  # a guessed slice can be accepted like a predicted one
    assert not panel.status.is_error
    np.testing.assert_array_equal(annotations.data[12], guessed)
    assert "Ctrl-Z" in panel.status.text()
    panel.shutdown()


def test_accept_is_one_undo_step_and_the_undo_is_autosaved(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    panel, annotations = painted_with_a_guess(viewer, qtbot)
    preview = tied.find_layer(viewer, panel.image, tied.PREVIEW)
    guessed = np.array(preview.data[12])
    show_slice(viewer, annotations, 12)
    panel.accept_button.click()
    np.testing.assert_array_equal(annotations.data[12], guessed)
    qtbot.waitUntil(lambda: not preview.data[12].any(), timeout=5_000)  # painted now: the preview steps aside
    panel.autosaver.dirty = False

    annotations.undo()  # what napari's Ctrl-Z does on the labels layer
    assert not annotations.data[12].any()  # the slice as it was before Accept, in one step
    assert (annotations.data[15] == 1).sum() > 100  # the painted slices untouched
    assert panel.autosaver.dirty  # the undo reaches the project file like any stroke
    qtbot.waitUntil(lambda: (preview.data[12] == guessed).all(), timeout=5_000)  # the guess shows again
    assert panel.strip.states[12] != "painted"

    panel.autosaver.dirty = False
    annotations.redo()
    np.testing.assert_array_equal(annotations.data[12], guessed)
    assert panel.autosaver.dirty
    panel.shutdown()


def test_the_guess_follows_new_paint_and_gives_way_to_the_network(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    panel, annotations = painted_with_a_guess(viewer, qtbot)
    annotations.data[12] = annotations.data[15]  # one more painted slice
    panel._show_annotated()
    qtbot.waitUntil(lambda: 12 not in panel.previews.interpolated, timeout=30_000)
    panel.previews.predicted = {10}  # the network has predicted a slice of this image
    annotations.data[18] = annotations.data[15]
    before = set(panel.previews.interpolated)
    panel._show_annotated()
    qtbot.wait(300)
    assert panel.previews.interpolated == before  # no new guess once the network predicts
    panel.shutdown()


def test_after_a_model_shift_n_goes_to_the_suggested_slice(make_napari_viewer, qtbot, tiny_model):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    annotations = paint_liver(panel, viewer)
    panel._rank(str(tiny_model))
    qtbot.waitUntil(lambda: panel.ranking is not None, timeout=60_000)
    ranking = panel.ranking
    assert set(ranking.slices).isdisjoint({8, 15, 22}) and panel.suggestions.top.count() > 0
    best = ranking.best()
    show_slice(viewer, annotations, 0)
    panel.next_button.click()
    assert current_slice(viewer, annotations) == best
    annotations.data[best] = annotations.data[15]  # painted now: the next press skips it
    panel.next_button.click()
    assert current_slice(viewer, annotations) == ranking.best(exclude=[best])
    panel.suggested_next.setChecked(False)  # back to index order
    show_slice(viewer, annotations, 0)
    panel.next_button.click()
    assert current_slice(viewer, annotations) == next_unannotated(annotations.data, 0)
    panel.shutdown()


def test_the_uncertainty_overlay_follows_the_toggle_and_the_model(make_napari_viewer, qtbot, tiny_model):
    viewer = make_napari_viewer()
    panel = open_sample(viewer)
    paint_liver(panel, viewer)
    panel.project.update(model=str(tiny_model))
    assert tied.find_layer(viewer, panel.image, tied.UNCERTAINTY) is None  # off by default: nothing computed
    panel.show_uncertainty.setChecked(True)  # predicts the volume once, keeping the entropy
    qtbot.waitUntil(lambda: tied.find_layer(viewer, panel.image, tied.UNCERTAINTY) is not None, timeout=60_000)
    layer = tied.find_layer(viewer, panel.image, tied.UNCERTAINTY)
    data = np.asarray(layer.data)
    assert data.shape == panel.image.data.shape and 0.0 <= data.min() and data.max() <= 1.0 and data.max() > 0
    np.testing.assert_allclose(layer.affine.affine_matrix, panel.image.affine.affine_matrix)  # on the scan
    assert layer.name not in [panel.image_chooser.itemText(i) for i in range(panel.image_chooser.count())]
    assert tied.same_layer(viewer.layers.selection.active, panel.layer(tied.ANNOTATIONS))  # the brush stays there
    panel.show_uncertainty.setChecked(False)
    assert not layer.visible and not panel.previews.with_uncertainty
    panel.show_uncertainty.setChecked(True)  # the same model: shown again without predicting again
    assert layer.visible
    panel.shutdown()


def test_the_3d_toggle_renders_the_preview_filled_and_follows_napari(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    panel, _ = painted_with_a_guess(viewer, qtbot)  # a preview layer exists
    preview = tied.find_layer(viewer, panel.image, tied.PREVIEW)
    assert preview.contour == tied.PREVIEW_CONTOUR
    panel.view_3d.setChecked(True)
    assert viewer.dims.ndisplay == 3 and preview.contour == 0  # napari draws no outline in 3D
    viewer.dims.ndisplay = 2  # napari's own 2D/3D button
    assert not panel.view_3d.isChecked() and preview.contour == tied.PREVIEW_CONTOUR
    viewer.dims.ndisplay = 3
    assert panel.view_3d.isChecked()
    panel.shutdown()
