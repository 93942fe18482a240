"""Predicting a folder: one mask per volume (each time point, each DICOM series, nested files), each mask the
prediction of that volume alone; the CLI and ``api.predict_folder`` walk the folder like the scan does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from gcl_engine import api
from gcl_engine.cli import main
from tests.engine.synthetic import TINY_MODEL, TINY_PRE, make_multi_volume_folder, phantom, write


@pytest.fixture(autouse=True)
def _salt(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GCL_STUDIO_SALT_DIR", str(tmp_path_factory.mktemp("salt")))


def train_tiny_model(root: Path) -> Path:
    """A tiny fine-tuned model: barely trained, but its masks depend on the pixels (checked below)."""
    root.mkdir(parents=True, exist_ok=True)
    image, labels = phantom(0)
    write(image, root / "image.nii.gz")
    write(labels, root / "labels.nii.gz")
    cfg = api.FinetuneConfig(image=str(root / "image.nii.gz"), labels=str(root / "labels.nii.gz"),
                             out=str(root / "m.pt"), steps=2, batch_size=2, slices=(3, 8, 12),
                             class_names=("background", "liver", "vessel"), preprocess=TINY_PRE, model=TINY_MODEL,
                             device="cpu", threads=1)
    return Path(api.finetune(cfg).model_path)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return train_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_multi_volume_folder(tmp_path_factory.mktemp("multi"))


def _alone(model: Path, path: Path, out: Path) -> np.ndarray:
    """The mask of one volume predicted by itself (a 3D file or a folder holding one series)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    assert main(["predict", "--model", str(model), "--image", str(path), "--out", str(out), "--threads", "1"]) == 0
    return api.load_volume(out).array


def _masks(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): api.load_volume(p).array for p in sorted(out.rglob("*_seg.nii.gz"))}


def check_one_mask_per_volume(model: Path, folder, out: Path, tmp_path: Path) -> None:
    """Shared by the CLI test here and the panel test: every volume got its own mask, equal to it alone."""
    _scans, expected = folder
    masks = _masks(out)
    assert sorted(masks) == sorted(expected)
    for name, alone in expected.items():
        np.testing.assert_array_equal(masks[name], _alone(model, alone, tmp_path / "alone" / name), err_msg=name)
    # the check can fail: different volumes get different masks from this model
    assert not np.array_equal(masks["cine_ct_t0_seg.nii.gz"], masks["cine_ct_t1_seg.nii.gz"])
    assert not np.array_equal(masks["dicom_s7_seg.nii.gz"], masks["dicom_s8_seg.nii.gz"])


def test_cli_predicts_every_volume_of_a_folder_as_if_alone(model, folder, tmp_path):
    scans, _ = folder
    assert main(["predict", "--model", str(model), "--image", str(scans), "--out", str(tmp_path / "masks"),
                 "--threads", "1"]) == 0
    check_one_mask_per_volume(model, folder, tmp_path / "masks", tmp_path)


def test_api_predict_folder_reports_each_volume_and_skips_bad_files(model, folder, tmp_path):
    scans, expected = folder
    (scans / "broken.nii.gz").write_bytes(b"not an image at all")
    events = []
    try:
        result = api.predict_folder(model, scans, tmp_path / "masks", on_event=events.append)
    finally:
        (scans / "broken.nii.gz").unlink()
    assert sorted(str(Path(m.mask).relative_to(tmp_path / "masks")) for m in result.masks) == sorted(expected)
    assert [Path(s.path).name for s in result.skipped] == ["broken.nii.gz"]
    assert result.status == "completed"
    progress = [e for e in events if isinstance(e, api.Progress) and e.stage == "predict folder"]
    assert progress[-1].done == progress[-1].total == len(expected)


def test_api_predict_folder_stops_when_cancelled(model, folder, tmp_path):
    scans, _ = folder
    token = api.CancelToken()

    def on_event(event):
        if isinstance(event, api.Progress) and event.stage == "predict folder" and event.done == 1:
            token.cancel()

    result = api.predict_folder(model, scans, tmp_path / "masks", on_event=on_event, cancel=token)
    assert result.status == "cancelled" and len(result.masks) == 1
    assert len(list((tmp_path / "masks").rglob("*_seg.nii.gz"))) == 1


def test_one_output_file_needs_exactly_one_volume(model, folder, tmp_path, capsys):
    scans, _ = folder
    assert main(["predict", "--model", str(model), "--image", str(scans / "cine_ct.nii.gz"),
                 "--out", str(tmp_path / "mask.nii.gz")]) == 2
    assert "3 volumes" in capsys.readouterr().err and not (tmp_path / "mask.nii.gz").exists()


def test_a_record_loads_exactly_its_volume(folder):
    scans, expected = folder
    result = api.scan_folder(scans)
    assert sorted(f"{v.volume_id}_seg.nii.gz" for v in result.volumes) == sorted(Path(n).name for n in expected)
    for record in result.volumes:
        alone = expected[next(n for n in expected if Path(n).name == f"{record.volume_id}_seg.nii.gz")]
        np.testing.assert_array_equal(api.load(record).array, api.load_volume(alone).array)
        assert dataclasses.asdict(api.load(record).meta)["volume_id"] == record.volume_id
