"""What scanners and converters write every day: scaled integer NIfTI, and NaN outside the field of view."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from gcl_engine import api


@pytest.fixture(autouse=True)
def _salt(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GCL_STUDIO_SALT_DIR", str(tmp_path_factory.mktemp("salt")))


def _scaled_nifti(path, shape=(12, 10, 8)):
    """int16 on disk with scl_slope 2.5 and scl_inter -100, as scanners' converters write it."""
    raw = (np.arange(int(np.prod(shape))) % 700 - 300).astype(np.int16).reshape(shape)
    image = nib.Nifti1Image(raw, np.diag([0.8, 0.9, 2.5, 1.0]), dtype=np.int16)
    image.header.set_slope_inter(2.5, -100.0)
    nib.save(image, str(path))
    stored = nib.load(str(path))
    assert stored.get_data_dtype() == np.int16 and stored.dataobj.slope == 2.5  # really scaled on disk
    return stored.get_fdata()


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_scaled_int16_nifti_loads_with_its_scaled_values(tmp_path, suffix):
    path = tmp_path / f"scaled{suffix}"
    expected = _scaled_nifti(path)
    volume = api.load_volume(path)
    np.testing.assert_allclose(volume.array, expected.transpose(2, 1, 0), rtol=1e-5, atol=1e-3)
    scan = api.scan_folder(tmp_path)
    assert [v.volume_id for v in scan.volumes] == ["scaled"] and scan.skipped == []


def _with_nonfinite(path, n_nan: int, n_inf: int, shape=(6, 8, 10)):
    """(x, y, z) float32 data with NaN and inf in its first voxels, written by nibabel or SimpleITK."""
    data = np.linspace(5.0, 900.0, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    flat = data.reshape(-1)
    flat[:n_nan] = np.nan
    flat[n_nan:n_nan + n_inf] = np.inf
    if path.name.endswith(".nii.gz"):
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    else:
        import SimpleITK as sitk

        sitk.WriteImage(sitk.GetImageFromArray(data.transpose(2, 1, 0)), str(path))
    return data.transpose(2, 1, 0)  # the engine's (k, j, i) order


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_a_few_nonfinite_voxels_become_the_minimum_with_a_warning(tmp_path, suffix):
    path = tmp_path / f"spm_output{suffix}"
    data = _with_nonfinite(path, n_nan=30, n_inf=4)
    volume = api.load_volume(path)
    array = volume.array
    assert np.isfinite(array).all()
    bad = ~np.isfinite(data)
    assert np.all(array[bad] == data[~bad].min()) and np.array_equal(array[~bad], data[~bad])
    assert any("34 voxel" in note and f"spm_output{suffix}" in note for note in volume.meta.notes)
    events = []
    scan = api.scan_folder(tmp_path, on_event=events.append)
    assert [v.volume_id for v in scan.volumes] == ["spm_output"]
    warnings = [e.message for e in events if isinstance(e, api.Log) and e.level == "warning"]
    assert any("34 voxel" in w and f"spm_output{suffix}" in w for w in warnings), warnings


def test_a_volume_that_is_mostly_nonfinite_is_refused(tmp_path):
    path = tmp_path / "empty_fov.nii.gz"
    _with_nonfinite(path, n_nan=300, n_inf=10)  # 310 of 480 voxels
    with pytest.raises(api.InputError, match="310 of 480 voxels") as err:
        api.load_volume(path)
    assert "empty_fov.nii.gz" in str(err.value)
