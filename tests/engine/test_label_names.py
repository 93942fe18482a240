"""Class names stay paired with their label map: a save interrupted between the two files never shows the
new classes under the old names."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from gcl_engine import api
from gcl_engine.io import writers
from gcl_engine.io.volume import Geometry

GEOMETRY = Geometry((0.8, 0.9, 2.5), (1.0, 2.0, 3.0), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))


def _labels(top: int) -> np.ndarray:
    labels = np.zeros((4, 6, 8), np.uint8)
    for i in range(1, top + 1):
        labels[i % 4, i, 1:5] = i
    return labels


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_names_written_with_a_label_map_are_read_back(tmp_path, suffix):
    path = api.export_nifti(_labels(2), GEOMETRY, tmp_path / f"mask{suffix}", ["background", "liver", "Gefäß"])
    found = api.read_label_names(path)
    assert found == api.LabelNames({0: "background", 1: "liver", 2: "Gefäß"}, found=True, problem="")


def test_a_save_stopped_between_the_map_and_its_names_is_detected(tmp_path, monkeypatch):
    path = tmp_path / "mask.nii.gz"
    api.export_nifti(_labels(1), GEOMETRY, path, ["background", "liver"])

    def disk_full(target, text, encoding="utf-8"):
        raise OSError(28, "No space left on device", str(target))

    monkeypatch.setattr(writers, "atomic_write_text", disk_full)  # the label map is written, its names are not
    with pytest.raises(OSError):
        api.export_nifti(_labels(2), GEOMETRY, path, ["background", "spleen", "kidney"])
    monkeypatch.undo()
    assert int(api.load_volume(path).array.max()) == 2  # the new map is on disk, beside the old names
    found = api.read_label_names(path)
    assert found.found and found.names == {}
    assert "mask.labels.json" in found.problem and "mask.nii.gz" in found.problem and "interrupted" in found.problem


def test_names_of_a_label_map_from_another_tool_are_used(tmp_path):
    path = tmp_path / "other.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(_labels(1)), str(path))  # no digest in its header
    (tmp_path / "other.labels.json").write_text('{"0": "background", "1": "tumour"}', encoding="utf-8")
    assert api.read_label_names(path).names == {0: "background", 1: "tumour"}


def test_no_names_file_and_an_unreadable_one(tmp_path):
    path = api.export_nifti(_labels(1), GEOMETRY, tmp_path / "mask.nii.gz", ["background", "liver"])
    (tmp_path / "mask.labels.json").write_text('{"0": "background", "1": ', encoding="utf-8")
    broken = api.read_label_names(path)
    assert broken.found and broken.names == {} and "mask.labels.json: unreadable class names" in broken.problem
    (tmp_path / "mask.labels.json").unlink()
    assert api.read_label_names(path) == api.LabelNames()
