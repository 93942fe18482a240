"""Hostile files beyond the foundation list: each gives a clear message and nothing crashes."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from gcl_engine import api
from tests.engine.synthetic import phantom, write
from tests.reliability.dicom_factory import write_series


def test_unicode_and_spaces_in_names_round_trip(tmp_path):
    folder = tmp_path / "Patientenordner mit Leerzeichen ü"
    folder.mkdir()
    image, labels = phantom(0)
    src = write(image, folder / "Schädel CT — série 1.nii.gz")
    scan = api.scan_folder(folder)
    assert len(scan.volumes) == 1 and scan.volumes[0].source == str(src)
    names = ["bg", "Leber", "Gefäß"]
    out = api.export_nifti(labels, api.load_volume(src), folder / "maske ü.nii.gz", label_names=names)
    assert np.array_equal(api.load_volume(out).array, labels)
    assert json.loads((folder / "maske ü.labels.json").read_text(encoding="utf-8"))["2"] == "Gefäß"


def test_nifti_header_that_lies_about_its_data_size(tmp_path):
    path = write(np.zeros((10, 20, 20), np.int16), tmp_path / "liar.nii")
    blob = bytearray(path.read_bytes())
    struct.pack_into("<h", blob, 42, 400)  # dim[1]: 20 -> 400 columns; the data stays 10x20x20
    path.write_bytes(bytes(blob))
    with pytest.raises(api.InputError, match="truncated"):
        api.load_volume(path)


def test_dicom_with_absurd_rows_and_columns(tmp_path):
    folder = write_series(tmp_path / "s", n=3)
    victim = sorted(folder.iterdir())[0]
    blob = bytearray(victim.read_bytes())
    rows_tag = b"\x28\x00\x10\x00"  # (0028,0010) Rows, explicit VR little endian: tag, 'US', len 2, value
    at = blob.find(rows_tag)
    assert at > 0
    blob[at + 8:at + 10] = struct.pack("<H", 65535)  # 65535 rows claimed, 40 rows of pixels present
    victim.write_bytes(bytes(blob))
    scan = api.scan_folder(folder)
    assert all(v.shape[1] < 65535 for v in scan.volumes)  # never stacked at the claimed size
    assert scan.skipped, "the lying slice must be reported"


def test_label_values_above_the_class_count(tmp_path):
    image, labels = phantom(1)
    img = write(image, tmp_path / "img.nii.gz")
    lab = write((labels * 7).astype(np.uint8), tmp_path / "lab.nii.gz")
    cfg = api.FinetuneConfig(image=str(img), labels=str(lab), out=str(tmp_path / "m.pt"), steps=1,
                             class_names=("background", "liver", "vessel"), device="cpu",
                             preprocess=api.PreprocessConfig(size=32), model=api.ModelConfig(base_channels=4, levels=3))
    with pytest.raises(api.InputError, match="class 14 is present in the labels but absent"):
        api.finetune(cfg)
    assert not (tmp_path / "m.pt").exists()


def test_a_volume_of_nans_in_a_folder_is_skipped_with_its_name(tmp_path):
    good, _ = phantom(2)
    write(good, tmp_path / "good.nii.gz")
    bad = sitk.GetImageFromArray(np.full((8, 16, 16), np.nan, np.float32))
    sitk.WriteImage(bad, str(tmp_path / "nans.nii.gz"))
    scan = api.scan_folder(tmp_path)
    assert [v.volume_id for v in scan.volumes] == ["good"]
    assert [s.path.endswith("nans.nii.gz") for s in scan.skipped] == [True]
    assert "NaN" in scan.skipped[0].reason or "finite" in scan.skipped[0].reason
