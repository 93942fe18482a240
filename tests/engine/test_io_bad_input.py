"""Every kind of bad input gives an InputError naming the file and the problem in one line."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from gcl_engine.errors import InputError
from gcl_engine.io.folder_index import discover
from gcl_engine.io.loading import load_volume
from gcl_engine.io.sample_data import sample_paths


@pytest.fixture(autouse=True)
def _salt(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GCL_STUDIO_SALT_DIR", str(tmp_path_factory.mktemp("salt")))


def nifti1_header(dims: tuple[int, ...], datatype: int = 16, bitpix: int = 32) -> bytes:
    """A minimal little-endian NIfTI-1 header (348 bytes + 4 extension bytes), written by hand."""
    h = bytearray(348)
    struct.pack_into("<i", h, 0, 348)
    struct.pack_into("<8h", h, 40, len(dims), *dims, *([1] * (7 - len(dims))))
    struct.pack_into("<hh", h, 70, datatype, bitpix)
    struct.pack_into("<8f", h, 76, *([1.0] * 8))
    struct.pack_into("<f", h, 108, 352.0)
    h[344:348] = b"n+1\x00"
    return bytes(h) + b"\x00" * 4


def _image(arr: np.ndarray, is_vector: bool = False) -> sitk.Image:
    return sitk.GetImageFromArray(arr, isVector=is_vector)


def make_bad_files(folder: Path) -> dict[str, str]:
    """Bad file name -> words its reason must contain."""
    ct = sample_paths()["ct"].read_bytes()
    (folder / "truncated.nii.gz").write_bytes(ct[: len(ct) // 2])
    (folder / "wrong_magic.nii.gz").write_bytes(b"this is not gzip data at all" * 20)
    (folder / "wrong_magic.nii").write_bytes(b"plain text, no NIfTI header" * 40)
    (folder / "zero.nii.gz").write_bytes(b"")
    (folder / "photo.bin").write_bytes(os.urandom(2000))
    sitk.WriteImage(_image(np.zeros((20, 30), np.int16)), str(folder / "flat2d.nii.gz"))
    (folder / "five_d.nii").write_bytes(nifti1_header((4, 4, 4, 2, 2)) + b"\x00" * (4 * 4 * 4 * 2 * 2 * 4))
    sitk.WriteImage(_image(np.zeros((4, 5, 6, 3), np.uint8), is_vector=True), str(folder / "rgb.nii.gz"))
    nan = np.full((4, 5, 6), np.nan, np.float32)
    nan[0, 0, :3] = 1.0
    nan[1, 1, :2] = np.inf
    sitk.WriteImage(_image(nan), str(folder / "nan.nii.gz"))  # ITK's NIfTI reader would turn these into 0
    sitk.WriteImage(_image(nan), str(folder / "nan.mha"))
    (folder / "huge.nii").write_bytes(nifti1_header((30000, 30000, 30000)))
    (folder / "huge.mha").write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 100000 100000 100000\nElementType = MET_SHORT\n"
        "ElementSpacing = 1 1 1\nElementDataFile = LOCAL\n"
    )
    (folder / "short.nii").write_bytes(nifti1_header((64, 64, 64)) + b"\x00" * 100)
    return {
        "truncated.nii.gz": "truncated", "wrong_magic.nii.gz": "not gzip", "wrong_magic.nii": "not a NIfTI",
        "zero.nii.gz": "empty file", "photo.bin": "not a medical image", "flat2d.nii.gz": "2D image",
        "five_d.nii": "5D image", "rgb.nii.gz": "3 components", "nan.nii.gz": "117 of 120 voxels (98%) are NaN",
        "nan.mha": "117 of 120 voxels (98%) are NaN",
        "huge.nii": "2**31", "huge.mha": "2**31", "short.nii": "truncated",
    }


def test_each_bad_file_gives_a_one_line_reason(tmp_path):
    for name, words in make_bad_files(tmp_path).items():
        with pytest.raises(InputError) as err:
            load_volume(tmp_path / name)
            pytest.fail(f"{name} was accepted")
        message = str(err.value)
        assert words in err.value.reason, (name, message)
        assert name in message and "\n" not in message
        assert "sitk::ERROR" not in message and ".cxx" not in message


def test_discovery_skips_each_bad_file_and_goes_on(tmp_path):
    expected = make_bad_files(tmp_path)
    sitk.WriteImage(_image(np.ones((3, 4, 5), np.int16)), str(tmp_path / "good.nii.gz"))
    sources, skipped = discover(tmp_path)
    assert [Path(s.path).name for s in sources] == ["good.nii.gz", "nan.mha", "nan.nii.gz"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    for name, words in expected.items():
        if name.startswith("nan."):
            continue  # NaN needs the pixels: found on load, not from the header
        assert words in reasons[name], (name, reasons.get(name))
    assert "nan.nii.gz" not in reasons


def test_huge_header_is_refused_without_allocating(tmp_path, monkeypatch):
    (tmp_path / "huge.nii").write_bytes(nifti1_header((30000, 30000, 30000)))
    pixel_reads = []
    monkeypatch.setattr(sitk, "ReadImage", lambda *a, **k: pixel_reads.append(a))
    monkeypatch.setattr(sitk.ImageFileReader, "Execute", lambda *a, **k: pixel_reads.append(a))
    with pytest.raises(InputError, match="30000x30000x30000"):
        load_volume(tmp_path / "huge.nii")
    assert pixel_reads == []  # refused from the header: no pixel buffer was ever asked for


def test_truncated_gzip_detected_even_with_valid_header(tmp_path):
    raw = gzip.decompress(sample_paths()["mr"].read_bytes())
    # a complete, valid gzip stream whose NIfTI data is 5000 bytes short
    (tmp_path / "cut.nii.gz").write_bytes(gzip.compress(raw[: len(raw) - 5000]))
    with pytest.raises(InputError, match="truncated"):
        load_volume(tmp_path / "cut.nii.gz")


def test_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    target = tmp_path / "locked.nii.gz"
    target.write_bytes(sample_paths()["ct"].read_bytes())
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != target and real_access(p, mode))
    with pytest.raises(InputError, match="permission denied") as err:
        load_volume(target)
    assert "locked.nii.gz" in str(err.value)


def test_folder_named_like_an_image(tmp_path):
    (tmp_path / "x.nii.gz").mkdir()
    with pytest.raises(InputError, match="is a folder, not an image file"):
        load_volume(tmp_path / "x.nii.gz")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_volume(tmp_path / "gone.nii.gz")
