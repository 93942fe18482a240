"""Formats SimpleITK cannot read, through nibabel: NIfTI-2 and FreeSurfer MGH/MGZ, geometry exact both ways.

Round trip: nibabel writes an oblique, anisotropic scan; the engine loads it (array and ITK geometry), a
mask is exported on it, and nibabel reads the mask back with the source's own affine.
"""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest

from gcl_engine import api
from gcl_engine.io.nibabel_io import affine_from_geometry, geometry_from_affine


@pytest.fixture(autouse=True)
def _salt(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GCL_STUDIO_SALT_DIR", str(tmp_path_factory.mktemp("salt")))


def oblique_affine(zooms=(0.8, 1.1, 2.5), degrees=(17.0, -9.0, 31.0), shift=(-40.5, 12.25, 63.0)) -> np.ndarray:
    rotation = np.eye(3)
    for axis, angle in enumerate(math.radians(d) for d in degrees):
        c, s = math.cos(angle), math.sin(angle)
        turn = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        turn[i, i], turn[i, j], turn[j, i], turn[j, j] = c, -s, s, c
        rotation = turn @ rotation
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(zooms)
    affine[:3, 3] = shift
    return affine


def data(shape=(9, 11, 7), dtype=np.int16) -> np.ndarray:
    return (np.arange(int(np.prod(shape))).reshape(shape) % 251 - 60).astype(dtype)


WRITERS = {
    "scan.nii.gz": lambda a, aff: nib.Nifti2Image(a, aff),
    "scan.nii": lambda a, aff: nib.Nifti2Image(a, aff),
    "scan.mgz": lambda a, aff: nib.MGHImage(a.astype(np.int32), aff),
    "scan.mgh": lambda a, aff: nib.MGHImage(a.astype(np.float32), aff),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_load_and_export_keep_nibabels_affine(tmp_path, name):
    affine, array = oblique_affine(), data()
    path = tmp_path / name
    nib.save(WRITERS[name](array, affine), str(path))
    source_affine = nib.load(str(path)).affine  # as stored (MGH keeps float32 fields)
    volume = api.load_volume(path)
    np.testing.assert_array_equal(volume.array, array.transpose(2, 1, 0))
    np.testing.assert_allclose(affine_from_geometry(volume.geometry), source_affine, atol=1e-5)
    mask = (volume.array > 40).astype(np.uint8)
    out = api.export_nifti(mask, volume, tmp_path / "mask.nii.gz", ["background", "bright"])
    back = nib.load(str(out))
    np.testing.assert_allclose(back.affine, source_affine, atol=1e-4)
    np.testing.assert_array_equal(np.asanyarray(back.dataobj).transpose(2, 1, 0), mask)
    assert volume.meta.volume_id == "scan" and volume.meta.notes == ()


def test_a_4d_nifti2_gives_one_volume_per_time_point(tmp_path):
    frames = np.stack([data() + 10 * t for t in range(3)], axis=-1)
    nib.save(nib.Nifti2Image(frames, oblique_affine()), str(tmp_path / "bold.nii.gz"))
    scan = api.scan_folder(tmp_path)
    assert [v.volume_id for v in scan.volumes] == ["bold_t0", "bold_t1", "bold_t2"]
    for t, record in enumerate(scan.volumes):
        np.testing.assert_array_equal(api.load(record).array, frames[..., t].transpose(2, 1, 0))


def test_simpleitk_and_nibabel_place_a_nifti1_alike(tmp_path):
    """The engine reads NIfTI-1 with SimpleITK: its geometry is the same affine nibabel reads."""
    affine = oblique_affine()
    image = nib.Nifti1Image(data(), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(tmp_path / "one.nii.gz"))
    volume = api.load_volume(tmp_path / "one.nii.gz")
    np.testing.assert_allclose(affine_from_geometry(volume.geometry), affine, atol=1e-5)


def test_geometry_conversion_inverts_exactly():
    affine = oblique_affine()
    geometry, notes = geometry_from_affine(affine)
    assert notes == [] and np.allclose(geometry.spacing, (0.8, 1.1, 2.5))
    np.testing.assert_allclose(affine_from_geometry(geometry), affine, atol=1e-12)


def test_a_sheared_grid_is_placed_on_the_nearest_orthogonal_one_with_a_note(tmp_path):
    affine = oblique_affine()
    affine[:3, 1] += 0.3 * affine[:3, 0]  # shear the second voxel axis towards the first
    nib.save(nib.MGHImage(data().astype(np.int32), affine), str(tmp_path / "sheared.mgz"))
    volume = api.load_volume(tmp_path / "sheared.mgz")
    direction = np.asarray(volume.geometry.direction).reshape(3, 3)
    np.testing.assert_allclose(direction.T @ direction, np.eye(3), atol=1e-9)
    assert any("not perpendicular" in note and "sheared.mgz" in note for note in volume.meta.notes)


def test_a_header_without_its_data_file_says_which_file_is_missing(tmp_path):
    image = nib.Nifti1Pair(data(), np.eye(4))
    nib.save(image, str(tmp_path / "pair.hdr"))
    (tmp_path / "pair.img").unlink()
    with pytest.raises(api.InputError, match="pair.img is missing"):
        api.load_volume(tmp_path / "pair.hdr")
    nib.save(image, str(tmp_path / "pair.hdr"))
    np.testing.assert_array_equal(api.load_volume(tmp_path / "pair.hdr").array, data().transpose(2, 1, 0))
