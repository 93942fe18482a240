"""Predict & export panel: predict the open volume and a folder, export masks (read back equal) and ONNX."""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk
from gcl_app.widgets.export_panel import ExportPanel

from gcl_engine import api


def open_panel(viewer, model=None) -> ExportPanel:
    _dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Predict & export")
    if model is not None:
        panel.model.value = str(model)
    return panel


def test_exported_mask_reads_back_equal_with_the_source_geometry(make_napari_viewer, qtbot, oblique_nifti, tmp_path):
    viewer = make_napari_viewer()
    [image] = viewer.open(str(oblique_nifti), plugin="gcl-studio")
    panel = open_panel(viewer)
    labels = viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="mask", affine=image.affine.affine_matrix,
                               metadata={**image.metadata, "gcl_label_names": {0: "background", 1: "disc"}})
    labels.data[4:8, 10:30, 12:20] = 1
    panel.labels_chooser.setCurrentText("mask")
    panel.mask_path.value = str(tmp_path / "out" / "mask.nii.gz")
    panel.export_mask_button.click()
    qtbot.waitUntil(lambda: (tmp_path / "out" / "mask.nii.gz").is_file() and "written" in panel.status.text(),
                    timeout=30_000)
    written, source = sitk.ReadImage(str(tmp_path / "out" / "mask.nii.gz")), sitk.ReadImage(str(oblique_nifti))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), labels.data)
    for getter in ("GetSpacing", "GetOrigin", "GetDirection"):
        np.testing.assert_allclose(getattr(written, getter)(), getattr(source, getter)(), atol=1e-5)
    assert json.loads((tmp_path / "out" / "mask.labels.json").read_text())["1"] == "disc"
    panel.shutdown()


def test_predict_current_volume_adds_a_prediction_layer(make_napari_viewer, qtbot, tiny_model):
    viewer = make_napari_viewer()
    viewer.open_sample("gcl-studio", "ct")
    panel = open_panel(viewer, tiny_model)
    panel.image_chooser.setCurrentText("sample CT")
    panel.predict_button.click()
    qtbot.waitUntil(lambda: "sample CT prediction" in viewer.layers, timeout=60_000)
    layer = viewer.layers["sample CT prediction"]
    assert layer.data.shape == viewer.layers["sample CT"].data.shape
    assert set(np.unique(layer.data)) <= {0, 1}
    assert layer.metadata["gcl_label_names"] == {0: "background", 1: "liver"}
    panel.shutdown()


def test_predict_folder_writes_a_mask_per_volume(make_napari_viewer, qtbot, tiny_model, scan_folder, tmp_path):
    viewer = make_napari_viewer()
    panel = open_panel(viewer, tiny_model)
    panel.folder.value, panel.folder_out.value = str(scan_folder), str(tmp_path / "masks")
    with qtbot.waitSignal(panel.progress.bar.valueChanged, timeout=60_000):
        panel.predict_folder_button.click()
    qtbot.waitUntil(lambda: panel.predict_folder_button.isEnabled(), timeout=60_000)
    masks = sorted(p.name for p in (tmp_path / "masks").glob("*_seg.nii.gz"))
    assert masks == ["subjA_ct_seg.nii.gz", "subjB_ct_seg.nii.gz", "subjC_ct_seg.nii.gz"]
    mask, scan = api.load_volume(tmp_path / "masks" / masks[0]), api.load_volume(scan_folder / "subjA_ct.nii.gz")
    assert mask.array.shape == scan.array.shape and mask.geometry.allclose(scan.geometry, tol=1e-5)
    panel.shutdown()


def test_export_onnx_reports_parity(make_napari_viewer, qtbot, tiny_model, tmp_path):
    viewer = make_napari_viewer()
    panel = open_panel(viewer, tiny_model)
    panel.onnx_path.value = str(tmp_path / "model.onnx")
    panel.export_onnx_button.click()
    qtbot.waitUntil(lambda: panel.export_onnx_button.isEnabled(), timeout=120_000)
    assert "ONNX written" in panel.status.text(), panel.status.text()
    assert (tmp_path / "model.onnx").is_file()
    panel.shutdown()


def test_predict_folder_predicts_each_time_point_and_series(make_napari_viewer, qtbot, tmp_path):
    """A 4D NIfTI and a DICOM folder of two series: one mask per volume, each equal to predicting it alone."""
    from tests.engine.synthetic import make_multi_volume_folder
    from tests.engine.test_predict_folder import check_one_mask_per_volume, train_tiny_model

    folder = make_multi_volume_folder(tmp_path / "multi")
    trained = train_tiny_model(tmp_path / "model")
    viewer = make_napari_viewer()
    panel = open_panel(viewer, trained)
    panel.folder.value, panel.folder_out.value = str(folder[0]), str(tmp_path / "masks")
    panel.predict_folder_button.click()
    qtbot.waitUntil(lambda: panel.predict_folder_button.isEnabled(), timeout=120_000)
    assert not panel.status.is_error, panel.status.text()
    check_one_mask_per_volume(trained, folder, tmp_path / "masks", tmp_path)
    panel.shutdown()


def test_dicom_seg_export_from_the_panel_matches_the_nifti_and_keeps_the_class_colours(make_napari_viewer, qtbot,
                                                                                      tmp_path):
    """The oblique DICOM sample opened by the plugin, a painted mask exported as NIfTI and as DICOM SEG."""
    from tests.engine.seg_readback import seg_on_grid

    viewer = make_napari_viewer()
    [image] = viewer.open(str(api.sample_paths()["oblique_dicom"]), plugin="gcl-studio")
    panel = open_panel(viewer)
    labels = viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="mask", affine=image.affine.affine_matrix,
                               metadata={**image.metadata, "gcl_label_names": {0: "background", 1: "brain"}})
    labels.data[3:12, 60:180, 70:200] = 1
    panel.labels_chooser.setCurrentText("mask")
    exported = {}
    for choice, name in (("NIfTI (.nii.gz)", "mask.nii.gz"), ("DICOM SEG (.dcm, beside a DICOM series)", "mask.dcm")):
        panel.mask_format.value = choice
        assert panel.mask_path.value.name.endswith(name.split(".", 1)[1])  # the format picks the suffix
        panel.mask_path.value = str(tmp_path / name)
        panel.export_mask_button.click()
        qtbot.waitUntil(lambda n=name: (tmp_path / n).is_file() and f"written: {tmp_path / n}" in panel.status.text(),
                        timeout=30_000)
        exported[name] = tmp_path / name
    assert "DICOM SEG" in panel.status.text()
    nifti = api.load_volume(exported["mask.nii.gz"])
    back = seg_on_grid(exported["mask.dcm"], nifti, {0: "background", 1: "brain"})
    np.testing.assert_array_equal(back.labels, nifti.array)
    import highdicom as hd
    import pydicom

    [segment] = pydicom.dcmread(exported["mask.dcm"]).SegmentSequence
    shown = np.round(np.asarray(labels.get_color(1))[:3] * 255)
    written_rgb = hd.color.CIELabColor.from_dicom_value(segment.RecommendedDisplayCIELabValue).to_rgb()
    assert np.abs(np.subtract(written_rgb, shown)).max() <= 2
    assert segment.SegmentAlgorithmType == "MANUAL"  # painted, not predicted
    panel.shutdown()
