"""2.5D input: a slice and its neighbours as channels, from fine-tuning (a 2D pre-trained encoder inflated)
through the Segmenter (torch and ONNX) to the suggestions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gcl_engine import api
from gcl_engine.checkpoint import load_checkpoint
from gcl_engine.config import FinetuneConfig, PretrainConfig
from gcl_engine.data.preprocessing import with_context
from tests.engine.synthetic import TINY_MODEL, TINY_PRE, make_folder

CONTEXT_PRE = dataclasses.replace(TINY_PRE, context_slices=1)


def test_with_context_stacks_neighbours_and_repeats_the_ends():
    slices = torch.arange(4, dtype=torch.float32)[:, None, None].expand(4, 2, 2)
    out = with_context(slices, 1)
    assert out.shape == (4, 3, 2, 2)
    assert out[:, :, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]
    assert with_context(slices, 0).shape == (4, 1, 2, 2)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctx")
    scans, images, labels = make_folder(root, n=2)
    run = api.pretrain(PretrainConfig(folder=str(scans), out=str(root / "run"), steps=2, volumes_per_batch=2,
                                      preprocess=TINY_PRE, model=TINY_MODEL, device="cpu", threads=1))
    return root, images, labels, run.checkpoint


def test_a_2d_pretrained_encoder_starts_2_5d_fine_tuning_unchanged_on_the_centre_slice(setup, tmp_path):
    root, images, labels, ckpt = setup
    cfg = FinetuneConfig(image=str(images[0]), labels=str(labels[0]), out=str(tmp_path / "m.pt"), pretrained=ckpt,
                         slices=(3, 8, 12), steps=1, lr_encoder=1e-12, lr_decoder=1e-12, batch_size=2,
                         class_names=("background", "liver", "vessel"), preprocess=CONTEXT_PRE, model=TINY_MODEL,
                         device="cpu", threads=1)
    model = api.finetune(cfg).model_path
    saved = load_checkpoint(model)["model"]
    pre = load_checkpoint(ckpt)["model"]
    first = next(k for k in saved if k.startswith("encoder.") and k.endswith("conv.weight"))
    assert saved[first].shape[1] == 3 and pre[first].shape[1] == 1
    torch.testing.assert_close(saved[first][:, 1], pre[first][:, 0], atol=1e-6, rtol=0)
    assert saved[first][:, [0, 2]].abs().max() < 1e-6  # neighbours start silent

    image = api.load_volume(images[1])
    by_torch = api.Segmenter.load(model).predict(image)
    assert by_torch.labels.shape == image.array.shape
    report = api.export_onnx(model, tmp_path / "m.onnx")
    assert report.max_abs_diff < 1e-4
    by_onnx = api.Segmenter.load(report.path).predict(image)
    assert (by_onnx.labels == by_torch.labels).mean() > 0.999
    ranking = api.rank_slices(model, image, [3, 8])
    assert len(ranking) == image.array.shape[0] - 2


def test_a_2_5d_model_uses_the_neighbours(setup, tmp_path):
    """Change only the slices next to slice 5: a 2.5D model's prediction of slice 5 changes, a 2D one's not."""
    root, images, labels, _ = setup
    outs = {}
    for ctx in (0, 1):
        cfg = FinetuneConfig(image=str(images[0]), labels=str(labels[0]), out=str(tmp_path / f"m{ctx}.pt"),
                             slices=(3, 8, 12), steps=4, batch_size=2, class_names=("background", "liver", "vessel"),
                             preprocess=dataclasses.replace(TINY_PRE, context_slices=ctx), model=TINY_MODEL,
                             device="cpu", threads=1)
        outs[ctx] = api.Segmenter.load(api.finetune(cfg).model_path)
    image = api.load_volume(images[0])
    changed = api.Volume(image.array.copy(), image.geometry, image.meta)
    changed.array[[4, 6]] = changed.array[[4, 6]][:, ::-1]
    for ctx, seg in outs.items():
        a, _ = seg.network_inputs(image)
        b, _ = seg.network_inputs(changed)
        pa = next(seg.softmax_batches(a[5:6]))[1]
        pb = next(seg.softmax_batches(b[5:6]))[1]
        assert np.allclose(pa, pb) == (ctx == 0)
