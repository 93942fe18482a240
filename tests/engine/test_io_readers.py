"""Reading NIfTI/NRRD/MHA scans: geometry, pixel type, 4D splitting and meta labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from gcl_engine.io.header_checks import read_image_info
from gcl_engine.io.loading import load_volume, load_volumes
from gcl_engine.io.naming import guess_modality, series_from_stem, subject_key
from gcl_engine.io.privacy import hash_identifier
from gcl_engine.io.sample_data import sample_paths
from gcl_engine.io.volume import VolumeSource

C, S = math.cos(0.4), math.sin(0.4)
OBLIQUE = (C, -S, 0.0, S, C, 0.0, 0.0, 0.0, 1.0)


@pytest.fixture(autouse=True)
def _salt(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GCL_STUDIO_SALT_DIR", str(tmp_path_factory.mktemp("salt")))


def synthetic(shape=(7, 9, 11), dtype=np.float32, spacing=(0.7, 1.3, 2.9), origin=(-12.5, 40.0, 3.25)):
    arr = (np.arange(np.prod(shape)).reshape(shape) % 97).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(OBLIQUE)
    return img, arr


def test_read_image_info_reads_header_only():
    info = read_image_info(sample_paths()["ct"])
    assert info.size == (122, 101, 30)
    assert info.dimension == 3
    assert info.pixel_type == "16-bit signed integer"
    assert info.n_components == 1 and info.bytes_per_component == 2
    assert info.spacing == (3.0, 3.0, 3.0)
    assert info.io_name == "NiftiImageIO"


def test_load_real_ct_keeps_order_type_and_geometry():
    v = load_volume(sample_paths()["ct"])
    assert v.shape == (30, 101, 122)  # (k, j, i)
    assert v.array.dtype == np.int16
    assert v.geometry.spacing == (3.0, 3.0, 3.0)
    assert np.allclose(v.geometry.direction, (-1, 0, 0, 0, -1, 0, 0, 0, 1))
    assert v.meta.modality == "CT"
    assert v.meta.volume_id == "example_ct_sm"
    assert v.meta.source == str(sample_paths()["ct"])
    assert v.meta.subject_hash == hash_identifier("example_ct_sm")
    assert len(v.meta.subject_hash) == 12 and v.meta.subject_hash != "example_ct_sm"


def test_load_real_mr_and_its_labels_share_the_grid():
    mr = load_volume(sample_paths()["mr"])
    seg = load_volume(sample_paths()["mr_labels"])
    assert mr.shape == seg.shape == (20, 91, 117)
    assert mr.meta.modality == "MR"
    assert mr.geometry.allclose(seg.geometry)
    assert seg.array.dtype == np.uint8 and int(seg.array.max()) == 49


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int16])
def test_synthetic_geometry_and_pixel_type_survive(tmp_path, suffix, dtype):
    img, arr = synthetic(dtype=dtype)
    path = tmp_path / f"scan{suffix}"
    sitk.WriteImage(img, str(path))
    v = load_volume(path)
    assert v.array.dtype == dtype
    assert np.array_equal(v.array, arr)
    assert np.allclose(v.geometry.spacing, img.GetSpacing(), atol=1e-6)
    assert np.allclose(v.geometry.origin, img.GetOrigin(), atol=1e-6)
    assert np.allclose(v.geometry.direction, OBLIQUE, atol=1e-6)


def test_4d_nifti_becomes_one_volume_per_time_point(tmp_path):
    frames = [synthetic()[0] + float(t) for t in range(3)]
    four = sitk.JoinSeries(frames)
    path = tmp_path / "cine_bold.nii.gz"
    sitk.WriteImage(four, str(path))
    vols = load_volumes(VolumeSource(str(path), "nifti"))
    assert [v.meta.volume_id for v in vols] == ["cine_bold_t0", "cine_bold_t1", "cine_bold_t2"]
    assert [v.meta.time_index for v in vols] == [0, 1, 2]
    assert all(v.meta.n_time_points == 3 for v in vols)
    assert len({v.meta.subject_hash for v in vols}) == 1
    for t, v in enumerate(vols):
        assert np.array_equal(v.array, sitk.GetArrayFromImage(frames[t]))
        assert np.allclose(v.geometry.direction, OBLIQUE, atol=1e-6)
        assert np.allclose(v.geometry.spacing, (0.7, 1.3, 2.9))


def test_modality_heuristic():
    air = np.full((4, 4, 4), -1000, np.int16)
    soft = np.full((4, 4, 4), 300, np.int16)
    assert guess_modality(air, "anything") == "CT"
    assert guess_modality(soft, "sub-01_T1w") == "MR"
    assert guess_modality(soft, "head_ct_cropped") == "CT"
    assert guess_modality(soft, "scan42") == "unknown"


@pytest.mark.parametrize(
    "stem, series",
    [("sub-01_ses-2_T1w", "T1w"), ("brain_001", "brain"), ("patient007_frame01", "patient_frame"),
     ("example_ct_sm", "example_ct_sm")],
)
def test_series_from_stem(stem, series):
    assert series_from_stem(stem) == series


def test_subject_key_uses_bids_entity():
    assert subject_key("sub-07_ses-1_T2w") == "sub-07"
    assert subject_key("case12") == "case12"
