"""Dice + CE fine-tuning loss and inverse-frequency class weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gcl_engine.losses import class_weights_from_labels, segmentation_loss


def target_map() -> torch.Tensor:
    """(2,16,16): mostly background, a large class 1, a rare class 2 (4 pixels)."""
    t = torch.zeros(2, 16, 16, dtype=torch.long)
    t[:, 2:10, 2:10] = 1
    t[0, 12:14, 12:14] = 2
    return t


def test_perfect_logits_give_zero_dice() -> None:
    t = target_map()
    logits = 30.0 * F.one_hot(t, 3).permute(0, 3, 1, 2).float()
    dice_only = segmentation_loss(logits, t, ce_weight=0.0)
    assert dice_only.item() == pytest.approx(0.0, abs=1e-4)
    wrong = segmentation_loss(logits.roll(1, dims=1), t, ce_weight=0.0)
    assert wrong.item() > 0.5


def test_class_weights_raise_rare_class_loss() -> None:
    t = target_map()
    logits = torch.zeros(2, 3, 16, 16)
    logits[:, 0] = 2.0  # predicts background everywhere: right on background, wrong on the rare classes
    logits[:, 1][t == 1] = 4.0
    w = class_weights_from_labels(t, 3)
    assert w[2] > w[1] > w[0]
    plain = segmentation_loss(logits, t, None, dice_weight=0.0)
    weighted = segmentation_loss(logits, t, w, dice_weight=0.0)
    assert weighted.item() > 1.5 * plain.item()


def test_class_weights_properties() -> None:
    t = target_map()
    w = class_weights_from_labels(t, 5, max_ratio=20.0)  # classes 3 and 4 absent
    assert w.shape == (5,) and w.dtype == torch.float32
    assert w.mean().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.isfinite(w).all()
    assert w[3] == w[4] == w[:3].max()  # absent classes get the largest present weight, no blow-up
    assert (w.max() / w.min()).item() <= 20.0 + 1e-4
    torch.testing.assert_close(class_weights_from_labels(torch.full((4, 4), -1), 3), torch.ones(3))


def test_gradient_flows() -> None:
    t = target_map()
    logits = torch.randn(2, 3, 16, 16, requires_grad=True)
    loss = segmentation_loss(logits, t, class_weights_from_labels(t, 3))
    loss.backward()
    assert torch.isfinite(loss) and logits.grad is not None and logits.grad.abs().sum() > 0


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        segmentation_loss(torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, 4, dtype=torch.long))
