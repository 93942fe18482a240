"""The npe2 manifest validates, napari finds the plugin, and every contribution works from napari."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
from gcl_app.layers import GEOMETRY_KEY, NAMES_KEY
from gcl_app.napari_plugin.panels import DataPanelWidget, ExportPanelWidget, FinetunePanelWidget, project_for
from npe2 import PluginManifest

from gcl_engine import api

WIDGETS = {"Data & pre-training": DataPanelWidget, "Annotate & fine-tune": FinetunePanelWidget,
           "Predict & export": ExportPanelWidget}


def test_manifest_validates_and_names_every_contribution():
    path = resources.files("gcl_app.napari_plugin") / "napari.yaml"
    manifest = PluginManifest.from_file(str(path))
    manifest.validate_imports()  # every python_name imports and resolves
    assert manifest.name == "gcl-studio"
    assert {w.display_name for w in manifest.contributions.widgets} == set(WIDGETS)
    reader = manifest.contributions.readers[0]
    assert reader.accepts_directories and "*.nii.gz" in reader.filename_patterns
    assert sorted(reader.filename_patterns) == sorted(f"*{s}" for s in api.SCAN_SUFFIXES)  # the engine's table
    assert manifest.contributions.writers[0].layer_types == ["labels"]
    assert [s.key for s in manifest.contributions.sample_data] == ["ct"]


@pytest.mark.parametrize("name", list(WIDGETS))
def test_each_widget_opens_from_the_manifest(make_napari_viewer, name):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("gcl-studio", name)
    assert isinstance(widget, WIDGETS[name])
    assert widget.project is project_for(viewer)  # the panels of one window share its project
    widget.shutdown()


def test_sample_data_opens_the_ct_with_reference_labels(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("gcl-studio", "ct")
    image, reference = viewer.layers["sample CT"], viewer.layers["reference labels"]
    assert image.data.shape == reference.data.shape and image.ndim == 3
    assert GEOMETRY_KEY in image.metadata and reference.metadata[NAMES_KEY][5] == "liver"
    np.testing.assert_allclose(image.affine.affine_matrix, reference.affine.affine_matrix)


def test_napari_open_and_save_use_the_plugin(make_napari_viewer, oblique_nifti, tmp_path):
    viewer = make_napari_viewer()
    [image] = viewer.open(str(oblique_nifti), plugin="gcl-studio")
    labels = viewer.add_labels(np.zeros(image.data.shape, np.uint8), affine=image.affine.affine_matrix,
                               metadata=dict(image.metadata), name="mask")
    labels.data[2, 5:9, 5:9] = 1
    out = tmp_path / "saved.nii.gz"
    written = labels.save(str(out))  # napari picks the only writer of .nii.gz: this plugin's
    assert written and out.is_file()
    back = api.load_volume(out)
    np.testing.assert_array_equal(back.array, labels.data)
    assert back.geometry.allclose(api.load_volume(oblique_nifti).geometry, tol=1e-5)


def test_a_dicom_folder_is_offered_to_the_plugin_and_opens_with_geometry(make_napari_viewer):
    """napari lists every reader for a folder (its own reads a stack without geometry): ours must be one."""
    from npe2 import PluginManager

    viewer = make_napari_viewer()
    folder = str(api.sample_paths()["oblique_dicom"])
    readers = {r.plugin_name for r in PluginManager.instance().iter_compatible_readers([folder])}
    assert "gcl-studio" in readers
    [layer] = viewer.open(folder, plugin="gcl-studio")
    reference = api.load_volume(folder)
    assert layer.data.shape == reference.array.shape
    assert api.Geometry.from_dict(layer.metadata[GEOMETRY_KEY]).allclose(reference.geometry)
