"""Writers: reference geometry, label dtype, sidecars, atomicity, never over a source; salt and hashes."""

from __future__ import annotations

import errno
import json
import math
import os
import re

import numpy as np
import pytest
import SimpleITK as sitk

from gcl_engine.errors import InputError, OutputError
from gcl_engine.io import atomic, privacy
from gcl_engine.io.loading import load_volume
from gcl_engine.io.sample_data import class_names, sample_paths
from gcl_engine.io.volume import Geometry, Volume, VolumeMeta
from gcl_engine.io.writers import export_nifti, sidecar_paths, write_volume

C, S = math.cos(0.5), math.sin(0.5)
OBLIQUE = Geometry((0.6, 1.1, 3.3), (101.5, -7.25, 42.0), (C, 0.0, S, 0.0, 1.0, 0.0, -S, 0.0, C))


@pytest.fixture(autouse=True)
def _salt(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GCL_STUDIO_SALT_DIR", str(tmp_path_factory.mktemp("salt")))


def _volume(tmp_path, shape=(5, 6, 7)) -> Volume:
    arr = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    return Volume(arr, OBLIQUE, VolumeMeta(source=str(tmp_path / "src.nii.gz"), volume_id="src"))


def test_real_ct_labels_round_trip(tmp_path):
    ct = load_volume(sample_paths()["ct"])
    seg = load_volume(sample_paths()["ct_labels"])
    names = class_names("ct_labels")
    out = export_nifti(seg.array, ct, tmp_path / "pred.nii.gz", label_names=names)
    back = load_volume(out)
    assert back.array.dtype == np.uint8
    assert np.array_equal(back.array, seg.array)
    assert back.geometry.allclose(ct.geometry, tol=1e-6)
    table = json.loads((tmp_path / "pred.labels.json").read_text())
    assert table["5"] == "liver" and table["0"] == "background"
    assert len(names) == 118  # background + 117 TotalSegmentator 'total' classes


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_oblique_geometry_written_exactly(tmp_path, suffix):
    labels = np.zeros((5, 6, 7), np.int64)
    labels[1:3, 2:5, 1:6] = 2
    out = export_nifti(labels, OBLIQUE, tmp_path / f"lab{suffix}")
    img = sitk.ReadImage(str(out))
    assert np.array_equal(sitk.GetArrayFromImage(img), labels)
    assert np.allclose(img.GetSpacing(), OBLIQUE.spacing, atol=1e-6)
    assert np.allclose(img.GetOrigin(), OBLIQUE.origin, atol=1e-6)
    assert np.allclose(img.GetDirection(), OBLIQUE.direction, atol=1e-6)


@pytest.mark.parametrize("top, dtype", [(1, np.uint8), (255, np.uint8), (256, np.uint16), (70000, np.uint32)])
def test_smallest_unsigned_type(tmp_path, top, dtype):
    labels = np.zeros((3, 4, 5), np.int64)
    labels[0, 0, 0] = top
    out = export_nifti(labels, OBLIQUE, tmp_path / "lab.nii.gz")
    assert sitk.GetArrayViewFromImage(sitk.ReadImage(str(out))).dtype == dtype


@pytest.mark.parametrize("bad, match", [(-1, "must be >= 0"), (1.5, "whole numbers")])
def test_bad_label_values_refused(tmp_path, bad, match):
    labels = np.zeros((3, 4, 5), np.float64)
    labels[1, 1, 1] = bad
    with pytest.raises(InputError, match=match):
        export_nifti(labels, OBLIQUE, tmp_path / "lab.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_shape_mismatch_names_both_shapes(tmp_path):
    vol = _volume(tmp_path)
    with pytest.raises(InputError, match=r"\(5, 6, 8\).*\(5, 6, 7\)"):
        export_nifti(np.zeros((5, 6, 8), np.uint8), vol, tmp_path / "lab.nii.gz")


def test_sidecars_formats(tmp_path):
    labels = np.zeros((3, 4, 5), np.uint8)
    labels[0, 0, :3] = [1, 2, 7]
    export_nifti(labels, OBLIQUE, tmp_path / "lab.nii.gz", label_names=["bg", "liver", 'a "quoted" name'])
    json_path, txt_path = sidecar_paths(tmp_path / "lab.nii.gz")
    expected = {"0": "bg", "1": "liver", "2": 'a "quoted" name', "7": "class 7"}
    assert json.loads(json_path.read_text()) == expected
    rows = [ln for ln in txt_path.read_text().splitlines() if not ln.startswith("#")]
    pattern = re.compile(r'^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([01])\s+([01])\s+([01])\s+"([^"]*)"$')
    parsed = [pattern.match(r).groups() for r in rows]
    assert [p[0] for p in parsed] == ["0", "1", "2", "7"]
    assert parsed[0][4:7] == ("0", "0", "0") and parsed[1][4:7] == ("1", "1", "1")
    assert parsed[2][7] == "a 'quoted' name"
    assert len({p[1:4] for p in parsed[1:]}) == 3  # distinct colours


def test_refuses_to_overwrite_sources(tmp_path):
    src = tmp_path / "scan.nii.gz"
    vol = _volume(tmp_path)
    write_volume(vol, src)
    before = src.read_bytes()
    vol = load_volume(src)
    with pytest.raises(OutputError, match="overwrite the source"):
        export_nifti(np.zeros(vol.shape, np.uint8), vol, src)
    other = tmp_path / "other.nii.gz"
    with pytest.raises(OutputError, match="overwrite the source"):
        export_nifti(np.zeros(vol.shape, np.uint8), vol.geometry, other, sources=[str(other)])
    dicom_vol = Volume(vol.array, vol.geometry, VolumeMeta(source=str(tmp_path), volume_id="d"))
    with pytest.raises(OutputError, match="inside the DICOM source folder"):
        export_nifti(np.zeros(vol.shape, np.uint8), dicom_vol, tmp_path / "sub" / "x.nii.gz")
    assert src.read_bytes() == before


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    target = tmp_path / "lab.nii.gz"
    target.write_bytes(b"old")

    def broken(*args, **kwargs):
        raise RuntimeError("Exception thrown in SimpleITK ImageFileWriter: long ITK trace\nline 2")

    monkeypatch.setattr(sitk, "WriteImage", broken)
    with pytest.raises(OutputError, match="cannot write") as err:
        export_nifti(np.zeros((2, 3, 4), np.uint8), OBLIQUE, target)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.nii.gz"] and target.read_bytes() == b"old"


def test_write_volume_round_trip_and_errors(tmp_path):
    vol = _volume(tmp_path)
    back = load_volume(write_volume(vol, tmp_path / "img.mha"))
    assert back.array.dtype == np.float32 and np.array_equal(back.array, vol.array)
    assert back.geometry.allclose(OBLIQUE)
    with pytest.raises(OutputError, match="does not exist"):
        write_volume(vol, tmp_path / "nope" / "img.nii.gz")
    with pytest.raises(OutputError, match="unsupported output format"):
        write_volume(vol, tmp_path / "img.png")


# --- atomic writes ----------------------------------------------------------------------------------

def test_atomic_temp_keeps_suffix_and_replaces(tmp_path):
    target = tmp_path / "a.nii.gz"
    with atomic.atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".nii.gz") and ".tmp-" in tmp.name
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk full"), (errno.EROFS, "read-only"),
                                         (errno.EACCES, "permission denied")])
def test_atomic_os_errors_become_output_errors(tmp_path, monkeypatch, code, words):
    def failing_replace(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OutputError, match=words) as err:
        atomic.atomic_write_text(tmp_path / "notes.json", "{}")
    assert "notes.json" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_atomic_exception_inside_block_removes_temp(tmp_path):
    with pytest.raises(ValueError):
        with atomic.atomic_write(tmp_path / "x.txt") as tmp:
            tmp.write_text("half")
            raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


# --- privacy -----------------------------------------------------------------------------------------

def test_hash_identifier_is_salted_and_short():
    a = privacy.hash_identifier("PAT-1", salt=b"x" * 32)
    assert re.fullmatch(r"[0-9a-f]{12}", a)
    assert a == privacy.hash_identifier("PAT-1", salt=b"x" * 32)
    assert a != privacy.hash_identifier("PAT-1", salt=b"y" * 32)
    assert a != privacy.hash_identifier("PAT-2", salt=b"x" * 32)


def test_machine_salt_is_created_once(tmp_path, monkeypatch):
    monkeypatch.setenv("GCL_STUDIO_SALT_DIR", str(tmp_path / "salty"))
    first = privacy.hash_identifier("PAT-1")
    salt_file = tmp_path / "salty" / "salt"
    stored = salt_file.read_bytes()
    assert len(stored) == privacy.SALT_BYTES
    privacy._load_salt.cache_clear()
    assert privacy.hash_identifier("PAT-1") == first and salt_file.read_bytes() == stored
    assert privacy.hash_identifier("PAT-1", salt=stored) == first
