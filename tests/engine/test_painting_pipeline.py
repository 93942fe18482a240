"""Scribbles, extra targets on unpainted slices, a prediction that keeps what was painted, test-time shifts and
the painting commands (gcl finetune --unknown-value, gcl interpolate, gcl suggest), end to end on small scans."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from gcl_engine import api
from gcl_engine.checkpoint import load_checkpoint
from gcl_engine.cli import main
from gcl_engine.config import FinetuneConfig
from gcl_engine.losses import IGNORE_INDEX
from gcl_engine.training import finetune as finetune_module
from tests.engine.synthetic import TINY_MODEL, TINY_PRE, phantom, write

U = api.UNKNOWN_LABEL
NAMES = ("background", "liver", "vessel")


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    root = tmp_path_factory.mktemp("painting")
    img, lab = phantom(3)
    return write(img, root / "ct.nii.gz"), write(lab, root / "ct_seg.nii.gz"), lab


def scribbles(lab: np.ndarray, slices: list[int]) -> np.ndarray:
    """A few pixels of each class in the middle of each region on the given slices; the rest unknown."""
    out = np.full(lab.shape, U, np.uint8)
    for k in slices:
        for c in (0, 1, 2):
            ys, xs = np.nonzero(lab[k] == c)
            if ys.size:
                keep = np.argsort((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)[:6]
                out[k, ys[keep], xs[keep]] = c
    return out


def cfg_for(scan, out, **kw) -> FinetuneConfig:
    image, labels, _ = scan
    base = FinetuneConfig(image=str(image), labels=str(labels), out=str(out), steps=4, batch_size=2,
                          class_names=NAMES, preprocess=TINY_PRE, model=TINY_MODEL, device="cpu", threads=1)
    return dataclasses.replace(base, **kw)


def test_the_loss_never_sees_unknown_voxels_and_background_only_slices_count(scan, tmp_path, monkeypatch):
    lab = scan[2]
    painted = scribbles(lab, [3, 8])
    painted[12] = U
    painted[12, 0, :5] = 0  # a slice painted as background only: "nothing here"
    seen = []
    real = finetune_module.segmentation_loss

    def spy(logits, target, *args, **kwargs):
        seen.append(target.detach().clone())
        return real(logits, target, *args, **kwargs)

    monkeypatch.setattr(finetune_module, "segmentation_loss", spy)
    result = api.finetune(cfg_for(scan, tmp_path / "m.pt", unknown_value=U, augment=False), labels_array=painted)
    assert result.annotated_slices == [3, 8, 12]
    targets = torch.cat([t.reshape(-1) for t in seen])
    assert (targets == IGNORE_INDEX).float().mean() > 0.9  # scribbles: almost every pixel unknown
    assert not (targets == U).any()  # the reserved value itself never reaches the loss as a class
    assert set(targets[targets != IGNORE_INDEX].unique().tolist()) <= {0, 1, 2}


def test_a_model_trained_on_scribbles_finds_the_organ_on_unpainted_slices(scan, tmp_path):
    lab = scan[2]
    painted = scribbles(lab, [2, 7, 12])
    cfg = cfg_for(scan, tmp_path / "s.pt", unknown_value=U, steps=60, batch_size=3, slices=None)
    model = api.finetune(cfg, labels_array=painted).model_path
    pred = api.Segmenter.load(model, api.PredictConfig(device="cpu")).predict(api.load_volume(scan[0])).labels
    held = [k for k in range(lab.shape[0]) if k not in (2, 7, 12)]
    liver_pred, liver_ref = pred[held] == 1, lab[held] == 1
    dice = 2 * (liver_pred & liver_ref).sum() / (liver_pred.sum() + liver_ref.sum())
    assert dice > 0.5, dice


def test_a_class_index_equal_to_the_unknown_value_is_refused(scan, tmp_path):
    with pytest.raises(api.InputError, match="also class 2"):
        api.finetune(cfg_for(scan, tmp_path / "m.pt", unknown_value=2, slices=(3, 8)))


def test_extra_targets_come_from_the_interpolation_and_from_the_model_when_continuing(scan, tmp_path, monkeypatch):
    from gcl_engine.training import extra_targets

    built = []
    real = extra_targets.build_extra_targets

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        built.append(out)
        return out

    monkeypatch.setattr(finetune_module, "build_extra_targets", spy)
    first = api.finetune(cfg_for(scan, tmp_path / "a.pt", slices=(3, 8), interpolation_target_weight=0.5,
                                 pseudo_label_weight=0.5))
    pool = built[-1]
    assert len(pool) == 4  # slices 4..7: inside the painted range only; no pseudo-labels without a model yet
    api.finetune(cfg_for(scan, tmp_path / "b.pt", slices=(3, 8), init_model=first.model_path,
                         pseudo_label_weight=0.5, pseudo_label_threshold=0.5))
    pool = built[-1]
    assert len(pool) == 16 - 2  # every unpainted slice, from the starting model's confident pixels
    assert load_checkpoint(tmp_path / "b.pt")["steps"] == 8


@pytest.fixture(scope="module")
def model(scan, tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "m.pt"
    return api.finetune(cfg_for(scan, out, steps=20, slices=(3, 8, 12))).model_path


def test_prediction_keeps_painted_voxels_and_fills_gaps_with_the_interpolation(scan, model):
    image, lab = api.load_volume(scan[0]), scan[2]
    painted = np.zeros_like(lab)
    painted[[3, 8, 12]] = lab[[3, 8, 12]]
    network = api.Segmenter.load(model, api.PredictConfig(device="cpu")).predict(image).labels
    kept = api.Segmenter.load(model, api.PredictConfig(device="cpu")).predict(
        image, painted=api.PaintedLabels(painted)).labels
    assert np.array_equal(kept[[3, 8, 12]], lab[[3, 8, 12]])  # what was painted is what comes back
    assert np.array_equal(kept[[0, 1, 5, 10, 14]], network[[0, 1, 5, 10, 14]])  # no reach: network elsewhere
    near = api.Segmenter.load(model, api.PredictConfig(device="cpu", interpolation_reach_mm=1e6)).predict(
        image, painted=api.PaintedLabels(painted)).labels
    interp = api.interpolate_slices(painted, [3, 8, 12], pixel_mm=(0.9, 1.2))  # rows j, columns i (mm)
    assert np.array_equal(near[4:12], interp[4:12])  # an interpolation weight near 1 decides inside the range
    assert np.array_equal(near[:3], network[:3]) and np.array_equal(near[13:], network[13:])


def test_test_time_shifts_average_five_shifted_predictions(scan, model):
    image = api.load_volume(scan[0])
    plain = api.Segmenter.load(model, api.PredictConfig(device="cpu"))
    shifted = api.Segmenter.load(model, api.PredictConfig(device="cpu", tta_shift=2))
    slices, _ = plain.network_inputs(image)
    batch = np.ascontiguousarray(slices[:2])
    manual = sum(torch.softmax(plain.backend.logits(np.ascontiguousarray(np.roll(batch, s, axis=(2, 3)))), 1)
                 .roll((-s[0], -s[1]), dims=(2, 3)) for s in ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2))) / 5
    _, got = next(shifted.softmax_batches(slices[:2]))
    torch.testing.assert_close(got, manual)
    assert shifted.predict(image).labels.shape == image.array.shape


def test_cli_interpolate_writes_the_filled_map_on_the_source_grid(scan, tmp_path, capsys):
    lab = scan[2]
    labels = api.load_volume(scan[1])
    painted = np.zeros_like(lab)
    painted[[2, 7, 12]] = lab[[2, 7, 12]]
    given = api.export_nifti(painted, labels, tmp_path / "painted.nii.gz", label_names=NAMES)
    out = tmp_path / "filled.nii.gz"
    assert main(["interpolate", "--labels", str(given), "--out", str(out)]) == 0
    assert "3 painted slice(s) [2, 7, 12]" in capsys.readouterr().out
    filled = api.load_volume(out)
    assert filled.geometry.allclose(labels.geometry)  # the oblique, mirrored header of the synthetic scan
    held = [k for k in range(3, 12) if k not in (7,)]
    liver = (filled.array[held] == 1), (lab[held] == 1)
    assert 2 * (liver[0] & liver[1]).sum() / (liver[0].sum() + liver[1].sum()) > 0.8
    assert json.loads((tmp_path / "filled.labels.json").read_text())["1"] == "liver"
    assert main(["interpolate", "--labels", str(tmp_path / "nope.nii.gz"), "--out", str(out)]) == 2


def test_cli_interpolate_along_another_axis_fills_that_axis(tmp_path):
    z, y, x = np.mgrid[:12, :20, :24]
    ball = (((z - 6) ** 2 + (y - 10) ** 2 + (x - 12) ** 2) < 36).astype(np.uint8)
    painted = np.zeros_like(ball)
    painted[:, :, [8, 12, 16]] = ball[:, :, [8, 12, 16]]  # slices along ITK i (numpy axis 2)
    src = write(painted, tmp_path / "p.nii.gz", spacing=(1.0, 1.0, 1.0))
    assert main(["interpolate", "--labels", str(src), "--out", str(tmp_path / "f.nii.gz"), "--axis", "i"]) == 0
    filled = api.load_volume(tmp_path / "f.nii.gz").array
    assert filled[:, :, 10].sum() > 0 and not filled[:, :, 5].any()


def test_cli_finetune_with_unknown_value_and_suggest(scan, tmp_path, capsys):
    image = api.load_volume(scan[0])
    lab = scan[2]
    path = api.export_nifti(scribbles(lab, [4, 10]), image, tmp_path / "scribbles.nii.gz")
    assert json.loads((tmp_path / "scribbles.labels.json").read_text())[str(U)] == "unknown (not painted)"
    assert int(api.load_volume(path).array.max()) == U  # the reserved value survives the writer and the reader
    out = tmp_path / "m.pt"
    assert main(["finetune", "--image", str(scan[0]), "--labels", str(path), "--unknown-value", str(U),
                 "--out", str(out), "--steps", "3", "--class-names", ",".join(NAMES), "--size", "32",
                 "--base-channels", "4", "--device", "cpu", "--threads", "1"]) == 0
    assert load_checkpoint(out)["annotated_slices"] == [4, 10]
    capsys.readouterr()
    assert main(["suggest", "--model", str(out), "--image", str(scan[0]), "--labels", str(path),
                 "--unknown-value", str(U), "--top", "3", "--json"]) == 0
    ranking = json.loads(capsys.readouterr().out)
    assert len(ranking) == 3 and not {r["slice"] for r in ranking} & {4, 10}
    assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
    assert main(["suggest", "--model", str(out), "--image", str(scan[0]), "--labels", str(path)]) == 0
    assert "paint next" in capsys.readouterr().out


def test_uncertainty_is_per_voxel_entropy_and_zero_on_painted_voxels(scan, model):
    image, lab = api.load_volume(scan[0]), scan[2]
    painted = np.zeros_like(lab)
    painted[8] = lab[8]
    seg = api.Segmenter.load(model, api.PredictConfig(device="cpu"))
    pred = seg.predict(image, keep_probabilities=True, keep_uncertainty=True, painted=api.PaintedLabels(painted))
    p = pred.probabilities.astype(np.float64)
    entropy = -(p * np.log(np.clip(p, 1e-8, None))).sum(0) / np.log(3)
    held = [k for k in range(lab.shape[0]) if k != 8]
    assert pred.uncertainty.shape == image.array.shape and pred.uncertainty.dtype == np.float16
    assert np.allclose(pred.uncertainty[held], entropy[held], atol=2e-2)
    assert not pred.uncertainty[8].any() and 0 < pred.uncertainty.max() <= 1


def test_a_continued_fine_tune_scores_the_previous_model_on_the_newly_painted_slices(scan, tmp_path):
    first = api.finetune(cfg_for(scan, tmp_path / "a.pt", slices=(3, 8), steps=10))
    events = []
    second = api.finetune(cfg_for(scan, tmp_path / "b.pt", slices=(3, 8, 12), init_model=first.model_path),
                          on_event=events.append)
    scores = [e.values for e in events if isinstance(e, api.Metric) and "heldout_dice" in e.values]
    assert len(scores) == 1 and 0.0 <= scores[0]["heldout_dice"] <= 1.0 and scores[0]["heldout_slices"] == 1
    history = load_checkpoint(second.model_path)["heldout"]
    assert history == [{"slices": [12], "dice": scores[0]["heldout_dice"], "painted_before": 2}]
    third = api.finetune(cfg_for(scan, tmp_path / "c.pt", slices=(3, 8, 12), init_model=second.model_path))
    assert load_checkpoint(third.model_path)["heldout"] == history  # nothing new painted: nothing new scored
