"""The fine-tuning augmentation: plain tensors out (MetaTensors slowed every later op), reproducible by seed."""

from __future__ import annotations

import torch

from gcl_engine.training.finetune_data import SegmentationAugment


def _batch(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.linspace(-1, 1, size * size).reshape(1, size, size).repeat(3, 1, 1)
    labels = torch.zeros(3, size, size, dtype=torch.long)
    labels[:, 8:20, 10:24] = 2
    labels[:, 22:28, 4:9] = 1
    return images, labels


def test_outputs_are_plain_tensors_of_the_documented_shapes():
    aug = SegmentationAugment(32)
    x, y = aug(*_batch(), seed=5)
    assert type(x) is torch.Tensor and type(y) is torch.Tensor
    assert x.shape == (3, 1, 32, 32) and x.dtype == torch.float32
    assert y.shape == (3, 32, 32) and y.dtype == torch.long
    assert set(torch.unique(y).tolist()) <= {0, 1, 2}


def test_same_seed_same_batch_other_seed_other_batch():
    aug = SegmentationAugment(32)
    x1, y1 = aug(*_batch(), seed=11)
    x2, y2 = aug(*_batch(), seed=11)
    x3, _ = aug(*_batch(), seed=12)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
