"""DICOM series: grouping, ordering, JPEG 2000, oblique geometry, multi-frame cine, broken stacks."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from gcl_engine.errors import InputError
from gcl_engine.io import dicom
from gcl_engine.io.loading import load_volume, load_volumes
from gcl_engine.io.privacy import hash_identifier
from gcl_engine.io.sample_data import sample_paths
from gcl_engine.io.volume import VolumeSource
from gcl_engine.io.writers import export_nifti

C, S = math.cos(0.3), math.sin(0.3)
TILT_X = (1.0, 0.0, 0.0, 0.0, C, -S, 0.0, S, C)
UID = "1.2.826.0.1.3680043.2.1125.1.42"


@pytest.fixture(autouse=True)
def _salt(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GCL_STUDIO_SALT_DIR", str(tmp_path_factory.mktemp("salt")))


def _slice_tags(image: sitk.Image, i: int, uid: str) -> dict[str, str]:
    d = image.GetDirection()
    pos = image.TransformIndexToPhysicalPoint((0, 0, i))
    sp = image.GetSpacing()
    return {
        "0008|0060": "MR", "0020|000e": uid, "0020|000d": uid + ".9", "0008|103e": "synthetic T1",
        "0010|0020": "PAT-0042", "0020|0013": str(i + 1), "0008|0018": f"{uid}.{i + 1}",
        "0020|0037": "\\".join(f"{x:.8f}" for x in (d[0], d[3], d[6], d[1], d[4], d[7])),
        "0020|0032": "\\".join(f"{x:.6f}" for x in pos), "0028|0030": f"{sp[1]}\\{sp[0]}",
    }


def write_series(folder: Path, n: int = 6, uid: str = UID, direction=TILT_X, prefix: str = "s") -> sitk.Image:
    """A synthetic oblique int16 series, one file per slice, written by GDCM."""
    folder.mkdir(parents=True, exist_ok=True)
    arr = (np.arange(n * 12 * 10).reshape(n, 12, 10) % 300 - 100).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((-20.0, 10.0, 5.0))
    img.SetDirection(direction)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for i in range(n):
        piece = img[:, :, i]
        for key, value in _slice_tags(img, i, uid).items():
            piece.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{prefix}{i:03d}.dcm"))
        writer.Execute(piece)
    return img


def test_jpeg2000_ct_series_with_empty_uids_loads():
    folder = sample_paths()["dicom_ct"]
    groups = dicom.series_in_folder(folder)
    assert len(groups) == 1 and len(groups[0]) == 20
    assert groups[0][0].series_uid == ""  # grouped by geometry
    v = load_volume(folder)
    assert v.shape == (20, 512, 512) and v.array.dtype == np.int16
    assert np.allclose(v.geometry.spacing, (0.9765625, 0.9765625, 2.0))
    assert np.allclose(v.geometry.origin, (-249.51171875, -437.51171875, -804.5))
    assert np.allclose(v.geometry.direction, np.eye(3).ravel())
    assert v.meta.modality == "CT" and v.meta.series == "CT Body 3.0"
    assert int(v.array.min()) == -1024 and int(v.array.max()) > 1000  # decoded, in HU


def test_dicom_seg_map_is_las_but_covers_the_same_voxels():
    ct = load_volume(sample_paths()["dicom_ct"])
    seg_img = sitk.ReadImage(str(sample_paths()["dicom_ct_labels"]))
    assert np.allclose(seg_img.GetDirection(), (1, 0, 0, 0, -1, 0, 0, 0, 1))
    ref = sitk.GetImageFromArray(ct.array)
    ref.SetSpacing(ct.geometry.spacing)
    ref.SetOrigin(ct.geometry.origin)
    ref.SetDirection(ct.geometry.direction)
    on_ct = sitk.GetArrayFromImage(sitk.Resample(seg_img, ref, sitk.Transform(), sitk.sitkNearestNeighbor))
    assert np.array_equal(on_ct, np.flip(sitk.GetArrayFromImage(seg_img), axis=1))
    liver = on_ct == 5
    assert 20 < float(np.median(ct.array[liver])) < 150  # liver HU: the labels sit on the right voxels


def test_oblique_brain_series_is_ordered_and_hashed():
    folder = sample_paths()["oblique_dicom"]
    v = load_volume(folder)
    assert v.shape == (19, 256, 256)
    tilt = (1, 0, 0, 0, 0.99096, -0.134158, 0, 0.134158, 0.99096)
    assert np.allclose(v.geometry.direction, tilt, atol=1e-4)
    assert 6.9 < v.geometry.spacing[2] < 7.1
    assert v.meta.modality == "MR" and v.meta.series == "FSE PD AXIAL OBL"
    assert v.meta.subject_hash == hash_identifier("123565")
    assert "123565" not in repr(v.meta)
    files = sorted(str(p) for p in folder.iterdir())
    shuffled = load_volumes(VolumeSource(str(folder), "dicom", tuple(reversed(files))))[0]
    assert np.array_equal(shuffled.array, v.array)


def test_multiframe_cine_frames_are_phases():
    v = load_volume(sample_paths()["cardiac_cine"])
    assert v.shape == (16, 256, 256) and v.array.dtype == np.uint8
    assert v.meta.slice_phase == tuple(range(16))
    assert v.meta.n_time_points == 16 and v.meta.time_index is None
    assert v.meta.modality == "MR"
    assert v.geometry.spacing[2] == 10.0  # slice thickness, not the 69.47 ms frame time


def test_synthetic_oblique_series_geometry(tmp_path):
    img = write_series(tmp_path / "s")
    v = load_volume(tmp_path / "s")
    assert np.array_equal(v.array, sitk.GetArrayFromImage(img))
    assert np.allclose(v.geometry.direction, TILT_X, atol=1e-6)
    assert np.allclose(v.geometry.origin, img.GetOrigin(), atol=1e-5)
    assert np.allclose(v.geometry.spacing, img.GetSpacing(), atol=1e-5)
    assert v.meta.subject_hash == hash_identifier("PAT-0042")


def test_dicom_derived_labels_round_trip(tmp_path):
    write_series(tmp_path / "s")
    v = load_volume(tmp_path / "s")
    labels = (v.array > 50).astype(np.uint8) * 3
    out = export_nifti(labels, v, tmp_path / "labels.nii.gz")
    back = sitk.ReadImage(str(out))
    assert np.array_equal(sitk.GetArrayFromImage(back), labels)
    assert np.allclose(back.GetSpacing(), v.geometry.spacing, atol=1e-6)
    assert np.allclose(back.GetOrigin(), v.geometry.origin, atol=1e-6)
    assert np.allclose(back.GetDirection(), v.geometry.direction, atol=1e-6)


def test_missing_slice_is_reported_not_stacked(tmp_path):
    write_series(tmp_path / "s", n=8)
    os.remove(tmp_path / "s" / "s004.dcm")
    with pytest.raises(InputError, match="missing slice") as err:
        load_volume(tmp_path / "s")
    assert "\n" not in str(err.value) and str(tmp_path / "s") in str(err.value)


def test_mixed_orientations_in_one_file_list_are_refused(tmp_path):
    write_series(tmp_path / "a", n=4, prefix="a")
    write_series(tmp_path / "b", n=4, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), prefix="b")
    files = [str(p) for p in sorted((tmp_path / "a").iterdir()) + sorted((tmp_path / "b").iterdir())]
    with pytest.raises(InputError, match="mixed slice orientations"):
        dicom.read_series(files, tmp_path)


def test_shared_uid_with_two_geometries_is_split(tmp_path):
    write_series(tmp_path / "mix", n=4, prefix="a")
    write_series(tmp_path / "mix", n=5, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), prefix="b")
    groups = dicom.series_in_folder(tmp_path / "mix")
    assert sorted(len(g) for g in groups) == [4, 5]


def test_two_real_series_in_one_folder_are_separated(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in sorted(sample_paths()["dicom_ct"].iterdir())[:5]:
        shutil.copy(p, mixed / p.name)
    for p in sorted(sample_paths()["oblique_dicom"].iterdir())[:4]:
        shutil.copy(p, mixed / p.name)
    groups = dicom.series_in_folder(mixed)
    assert sorted(len(g) for g in groups) == [4, 5]
    assert {g[0].modality for g in groups} == {"CT", "MR"}


def test_single_slice_and_non_image_dicom(tmp_path):
    write_series(tmp_path / "one", n=1)
    with pytest.raises(InputError, match="single 2D DICOM slice"):
        load_volume(tmp_path / "one")
    assert dicom.read_header(str(sample_paths()["ct"])) is None  # a NIfTI is not a DICOM image
