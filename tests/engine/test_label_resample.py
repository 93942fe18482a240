"""Labels from class-boundary cells only (data/label_resample.py) against upsampling every class's map."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gcl_engine import api
from gcl_engine.config import FinetuneConfig
from gcl_engine.data import label_resample
from gcl_engine.data.label_resample import upsampled_argmax
from gcl_engine.data.orientation import InPlaneOrientation
from gcl_engine.data.slice_layout import make_layout
from tests.engine.synthetic import TINY_MODEL, TINY_PRE, phantom, write


def reference(maps: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    return F.interpolate(maps[None], size=shape, mode="bilinear", align_corners=False)[0].argmax(0).numpy()


def smooth_logits(rng, k: int, h: int, w: int, grain: int) -> torch.Tensor:
    coarse = torch.from_numpy(rng.normal(size=(1, k, max(1, h // grain), max(1, w // grain))).astype(np.float32))
    return F.interpolate(coarse * 3, size=(h, w), mode="bicubic", align_corners=False)[0]


@pytest.mark.parametrize("k,small,big,grain", [
    (3, (32, 32), (40, 40), 4), (7, (24, 30), (101, 77), 3), (118, (32, 32), (128, 128), 4),
    (5, (40, 50), (17, 23), 2),  # downsampling: cells that own no output pixel
    (4, (1, 9), (3, 20), 1),
])
def test_same_labels_as_upsampling_every_class(k, small, big, grain):
    rng = np.random.default_rng(k)
    logits = smooth_logits(rng, k, *small, grain)
    probs = torch.softmax(logits, 0)
    want = reference(probs, big)
    assert np.array_equal(upsampled_argmax(probs.numpy(), big), want)
    assert np.array_equal(upsampled_argmax(logits.numpy(), big, logits=True), want)
    assert np.array_equal(upsampled_argmax(probs.numpy(), big, max_values=50), want)  # many small chunks


def test_noise_like_maps_take_the_full_path_and_still_agree(monkeypatch):
    calls = []
    full = label_resample._full
    monkeypatch.setattr(label_resample, "_full", lambda *a: calls.append(a) or full(*a))
    probs = torch.softmax(torch.from_numpy(np.random.default_rng(0).normal(size=(60, 16, 16)).astype(np.float32)), 0)
    assert np.array_equal(upsampled_argmax(probs.numpy(), (64, 64)), reference(probs, (64, 64)))
    assert len(calls) == 1


@pytest.mark.parametrize("orientation", [InPlaneOrientation(), InPlaneOrientation(True, True, False),
                                         InPlaneOrientation(False, False, True)])
@pytest.mark.parametrize("fov", [None, 30.0, 90.0])
def test_layout_labels_match_the_argmax_of_the_full_maps(orientation, fov):
    layout = make_layout(orientation, (44, 37), 32, (1.1, 0.8), fov)
    maps = torch.stack([torch.softmax(smooth_logits(np.random.default_rng(i), 4, 32, 32, 4), 0) for i in range(3)])
    want = layout.to_source(maps).argmax(1).numpy()
    got = layout.to_source_labels(maps, np.uint8)
    assert got.shape == (3, 44, 37) and got.dtype == np.uint8
    assert np.array_equal(got, want)
    logits = torch.log(maps)
    assert np.array_equal(layout.to_source_labels(logits, logits=True), want)


NAMES = ("background", "liver", "vessel")


@pytest.fixture(scope="module")
def scan_and_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("resample")
    img, lab = phantom(5)
    image, labels = write(img, root / "ct.nii.gz"), write(lab, root / "ct_seg.nii.gz")
    cfg = FinetuneConfig(image=str(image), labels=str(labels), out=str(root / "m.pt"), steps=3, batch_size=2,
                         slices=(3, 8, 12), class_names=NAMES, preprocess=TINY_PRE, model=TINY_MODEL, device="cpu",
                         threads=1)
    return api.load_volume(image), lab, api.finetune(cfg).model_path


@pytest.mark.parametrize("options", [{}, {"tta_shift": 2}, {"largest_component": True}])
def test_segmenter_labels_path_predicts_what_the_probabilities_path_does(scan_and_model, options):
    image, lab, model = scan_and_model
    cfg = api.PredictConfig(device="cpu", **options)
    fast = api.Segmenter.load(model, cfg).predict(image).labels
    full = api.Segmenter.load(model, dataclasses.replace(cfg, upsample="probabilities")).predict(image).labels
    assert fast.shape == image.array.shape and fast.dtype == full.dtype
    assert np.array_equal(fast, full)


@pytest.mark.parametrize("reach", [None, 5.0])
def test_painted_predictions_agree_on_both_paths(scan_and_model, reach):
    image, lab, model = scan_and_model
    painted = np.zeros_like(lab)
    painted[[3, 8, 12]] = lab[[3, 8, 12]]
    cfg = api.PredictConfig(device="cpu", interpolation_reach_mm=reach)
    runs = {name: api.Segmenter.load(model, dataclasses.replace(cfg, upsample=up)).predict(
        image, painted=api.PaintedLabels(painted), keep_uncertainty=keep)
        for name, up, keep in (("fast", "labels", False), ("full", "probabilities", False),
                               ("uncertain", "labels", True))}
    assert np.array_equal(runs["fast"].labels, runs["full"].labels)
    assert np.array_equal(runs["fast"].labels[[3, 8, 12]], lab[[3, 8, 12]])
    assert np.array_equal(runs["uncertain"].labels, runs["fast"].labels)
    assert runs["uncertain"].uncertainty.shape == lab.shape


def test_an_unknown_upsample_choice_is_refused():
    with pytest.raises(api.ConfigError, match="upsample"):
        api.PredictConfig(upsample="nearest").validate()
