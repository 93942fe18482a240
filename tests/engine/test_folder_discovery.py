"""Folder discovery: what is found, what is skipped and why, links, progress and cancel."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from gcl_engine.errors import Cancelled, InputError
from gcl_engine.events import Progress
from gcl_engine.io.folder_index import discover
from gcl_engine.io.loading import load_volumes
from gcl_engine.io.sample_data import sample_data_dir, sample_paths
from gcl_engine.runtime import CancelToken


@pytest.fixture(autouse=True)
def _salt(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GCL_STUDIO_SALT_DIR", str(tmp_path_factory.mktemp("salt")))


def _small(path: Path, value: int = 1) -> None:
    sitk.WriteImage(sitk.GetImageFromArray(np.full((3, 4, 5), value, np.int16)), str(path))


def test_sample_data_is_discovered_and_loads():
    sources, skipped = discover(sample_data_dir())
    assert skipped == []  # LICENSES.md and *.labels.json are silently ignored
    by_name = {Path(s.path).name: s for s in sources}
    dicom = {Path(s.path).name: len(s.files) for s in sources if s.kind == "dicom"}
    assert dicom == {"ct_dicom": 20, "oblique_brain_dicom": 19, "cardiac_cine": 1}
    assert {"example_ct_sm.nii.gz", "example_mr_sm.nii.gz", "example_seg.nii.gz"} <= set(by_name)
    assert len(sources) == 8
    shapes = {Path(s.path).name: load_volumes(s)[0].shape for s in sources}
    assert shapes["cardiac_cine"] == (16, 256, 256) and shapes["example_ct_sm.nii.gz"] == (30, 101, 122)


def test_mixed_folder_reports_each_skip_and_ignores_sidecars(tmp_path):
    _small(tmp_path / "a.nii.gz")
    (tmp_path / "sub").mkdir()
    _small(tmp_path / "sub" / "b.nrrd")
    (tmp_path / "README").write_text("these are my scans")
    (tmp_path / "a.labels.json").write_text("{}")
    (tmp_path / "a.label.txt").write_text("0 0 0 0 0 0 0 \"bg\"")
    (tmp_path / "meta.csv").write_text("file,site\n")
    (tmp_path / "empty.nii").write_bytes(b"")
    sources, skipped = discover(tmp_path)
    assert [(Path(s.path).name, s.kind) for s in sources] == [("a.nii.gz", "nifti"), ("b.nrrd", "nrrd")]
    assert {Path(s.path).name: s.reason for s in skipped} == {
        "README": "not a medical image (no reader for this format)",
        "empty.nii": "empty file (0 bytes)",
    }


def test_symlink_loop_terminates(tmp_path):
    _small(tmp_path / "a.nii.gz")
    (tmp_path / "inner").mkdir()
    os.symlink(tmp_path, tmp_path / "inner" / "loop")
    os.symlink(tmp_path / "a.nii.gz", tmp_path / "inner" / "same.nii.gz")
    sources, skipped = discover(tmp_path)
    assert [Path(s.path).name for s in sources] == ["a.nii.gz"]
    reasons = " | ".join(s.reason for s in skipped)
    assert "symbolic link loop" in reasons and "already found" in reasons


def test_broken_link_is_skipped(tmp_path):
    os.symlink(tmp_path / "nowhere.nii.gz", tmp_path / "dangling.nii.gz")
    sources, skipped = discover(tmp_path)
    assert sources == [] and [s.reason for s in skipped] == ["broken symbolic link"]


def test_empty_missing_and_not_a_folder(tmp_path):
    assert discover(tmp_path) == ([], [])
    with pytest.raises(InputError, match="folder not found"):
        discover(tmp_path / "missing")
    _small(tmp_path / "a.nii.gz")
    with pytest.raises(InputError, match="not a folder"):
        discover(tmp_path / "a.nii.gz")


def test_dicom_series_grouped_and_broken_series_skipped(tmp_path):
    ct = sorted(sample_paths()["dicom_ct"].iterdir())
    good, broken = tmp_path / "good", tmp_path / "broken"
    good.mkdir()
    broken.mkdir()
    for p in ct[:6]:
        shutil.copy(p, good / p.name)
    for p in ct[:3] + ct[4:8]:  # slice 4 missing
        shutil.copy(p, broken / p.name)
    sources, skipped = discover(tmp_path)
    assert [(Path(s.path).name, len(s.files)) for s in sources] == [("good", 6)]
    assert len(skipped) == 1 and skipped[0].path == str(broken) and "missing slice" in skipped[0].reason


def test_progress_every_50_files_and_final(tmp_path):
    for i in range(120):
        (tmp_path / f"note{i:03d}.dat").write_bytes(b"x")
    events: list[Progress] = []
    discover(tmp_path, on_event=events.append)
    assert [e.done for e in events] == [50, 100, 120]
    assert all(e.stage == "discover" for e in events) and events[-1].total == 120


def test_cancel_stops_discovery(tmp_path):
    for i in range(120):
        (tmp_path / f"note{i:03d}.dat").write_bytes(b"x")
    token = CancelToken()
    seen: list[int] = []

    def on_event(event):
        seen.append(event.done)
        token.cancel()

    with pytest.raises(Cancelled):
        discover(tmp_path, on_event=on_event, cancel=token)
    assert seen == [50]
