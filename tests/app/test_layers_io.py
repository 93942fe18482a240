"""Geometry: the affine napari gets, the reader's layers and the writer's NIfTI, against SimpleITK."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from gcl_app.layers import GEOMETRY_KEY, META_KEY, NAMES_KEY, affine_from_geometry, geometry_from_affine
from gcl_app.napari_plugin.reader import get_reader, read_scan
from gcl_app.napari_plugin.writer import write_labels

from gcl_engine import api
from tests.app.synthetic import oblique_direction


def _physical(image: sitk.Image, index_ijk) -> np.ndarray:
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint([float(v) for v in index_ijk]))


@pytest.mark.parametrize("direction", [tuple(np.eye(3).ravel()), (-1, 0, 0, 0, -1, 0, 0, 0, 1), oblique_direction()])
def test_affine_maps_voxels_where_itk_does(direction):
    geometry = api.Geometry((0.7, 1.1, 3.0), (10.0, -20.0, 5.5), tuple(float(d) for d in direction))
    image = sitk.Image(5, 6, 7, sitk.sitkUInt8)  # sizes (i, j, k)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    affine = affine_from_geometry(geometry)
    for kji in [(0, 0, 0), (6, 5, 4), (3, 1, 2)]:
        world_zyx = affine @ np.array([*kji, 1.0])
        np.testing.assert_allclose(world_zyx[:3][::-1], _physical(image, kji[::-1]), atol=1e-9)
    assert geometry_from_affine(affine).allclose(geometry, tol=1e-9)


def test_reader_accepts_scans_and_dicom_folders_only(tmp_path, oblique_nifti):
    assert get_reader(str(oblique_nifti)) is not None
    assert get_reader(str(api.sample_paths()["oblique_dicom"])) is not None
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "a.png").write_bytes(b"\x89PNG")
    assert get_reader(str(tmp_path / "pictures")) is None
    assert get_reader(str(tmp_path / "table.csv")) is None


def test_nifti_round_trip_keeps_the_oblique_geometry(tmp_path, oblique_nifti):
    data, kwargs, kind = read_scan(oblique_nifti)
    assert kind == "image"
    source = sitk.ReadImage(str(oblique_nifti))
    geometry = api.Geometry.from_dict(kwargs["metadata"][GEOMETRY_KEY])
    assert geometry.allclose(api.Geometry(source.GetSpacing(), source.GetOrigin(), source.GetDirection()))
    assert kwargs["metadata"][META_KEY]["volume_id"] == "oblique_ct"
    labels = (np.asarray(data) > -300).astype(np.uint8) * 2
    attributes = {"metadata": {**kwargs["metadata"], NAMES_KEY: {"0": "background", "2": "disc"}},
                  "affine": kwargs["affine"]}
    out = write_labels(str(tmp_path / "mask.nii.gz"), labels, attributes)
    written = sitk.ReadImage(out[0])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), labels)
    for getter in ("GetSpacing", "GetOrigin", "GetDirection"):
        np.testing.assert_allclose(getattr(written, getter)(), getattr(source, getter)(), atol=1e-6)
    names = json.loads((tmp_path / "mask.labels.json").read_text())
    assert names["2"] == "disc"


def test_writer_without_metadata_uses_the_layer_affine(tmp_path, oblique_nifti):
    """A labels layer made by napari itself (no GCL metadata) still lands on the source grid."""
    data, kwargs, _ = read_scan(oblique_nifti)
    out = write_labels(str(tmp_path / "plain.nii.gz"), np.ones(np.shape(data), np.uint8),
                       {"metadata": {}, "affine": kwargs["affine"]})
    source, written = sitk.ReadImage(str(oblique_nifti)), sitk.ReadImage(out[0])
    np.testing.assert_allclose(written.GetDirection(), source.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(written.GetOrigin(), source.GetOrigin(), atol=1e-6)


def test_oblique_dicom_series_round_trip(tmp_path):
    folder = api.sample_paths()["oblique_dicom"]
    data, kwargs, kind = read_scan(folder)
    reference = api.load_volume(folder)
    direction = np.asarray(reference.geometry.direction).reshape(3, 3)
    assert kind == "image" and np.abs(direction - np.eye(3)).max() > 0.1  # really oblique
    labels = np.zeros(np.shape(data), np.uint8)
    labels[3:6, 100:150, 80:120] = 1
    out = write_labels(str(tmp_path / "dicom_mask.nii.gz"), labels,
                       {"metadata": kwargs["metadata"], "affine": kwargs["affine"]})
    back = api.load_volume(out[0])
    np.testing.assert_array_equal(back.array, labels)
    assert back.geometry.allclose(reference.geometry, tol=1e-5)
    assert geometry_from_affine(kwargs["affine"]).allclose(reference.geometry, tol=1e-9)


def test_writer_refuses_to_overwrite_the_source_scan(oblique_nifti):
    data, kwargs, _ = read_scan(oblique_nifti)
    with pytest.raises(api.OutputError):
        write_labels(str(oblique_nifti), np.zeros(np.shape(data), np.uint8),
                     {"metadata": kwargs["metadata"], "affine": kwargs["affine"]})


def test_layer_metadata_holds_no_raw_identifiers():
    _, kwargs, _ = read_scan(api.sample_paths()["oblique_dicom"])
    meta = kwargs["metadata"][META_KEY]
    assert set(meta) <= {"source", "volume_id", "modality", "series", "subject_hash", "time_index",
                         "n_time_points", "extra", "slice_phase"}
    text = json.dumps(meta).lower()
    for tag in ("patientname", "patientid", "birth"):
        assert tag not in text


def test_a_label_map_with_a_stale_names_file_opens_as_labels_with_a_warning(tmp_path):
    geometry = api.Geometry((0.7, 1.1, 3.0), (10.0, -20.0, 5.5), oblique_direction())
    labels = np.zeros((3, 5, 6), np.uint8)
    labels[1, 1:3, 1:4] = 1
    path = api.export_nifti(labels, geometry, tmp_path / "mask.nii.gz", ["background", "liver"])
    old_names = (tmp_path / "mask.labels.json").read_bytes()
    labels[2, 1:3, 1:4] = 2
    api.export_nifti(labels, geometry, path, ["background", "kidney", "liver"])
    (tmp_path / "mask.labels.json").write_bytes(old_names)  # the names of the save before
    with pytest.warns(UserWarning, match="mask.labels.json does not belong to this version of mask.nii.gz"):
        data, kwargs, kind = read_scan(path)
    assert kind == "labels" and int(data.max()) == 2
    assert kwargs["metadata"][NAMES_KEY] == {}
