"""Fine-tuning loss: soft Dice over foreground classes + class-weighted cross-entropy.

Class-weighted CE is the fine-tuning default: with plain CE + Dice only the largest organ was learnt
(GCL_SPEC.md, second round of measured lessons).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import Tensor


def class_weights_from_labels(
    labels: Tensor, num_classes: int, smoothing: float = 1e-3, max_ratio: float = 50.0
) -> Tensor:
    """Inverse-frequency class weights (num_classes,) float, mean 1, from a label map of any shape.

    w_k = 1 / (freq_k + smoothing); values outside [0, num_classes) are ignored. A class absent from
    ``labels`` gets the largest weight of a present class, and every weight is clipped to ``max_ratio``
    times the smallest, so absent or one-pixel classes cannot explode. No labelled pixel at all: ones.
    """
    flat = labels.reshape(-1).long()
    flat = flat[(flat >= 0) & (flat < num_classes)]
    counts = torch.bincount(flat, minlength=num_classes).double()
    total = counts.sum()
    if total == 0:
        return torch.ones(num_classes)
    present = counts > 0
    weights = 1.0 / (counts / total + smoothing)
    weights = torch.where(present, weights, weights[present].max())
    weights = weights.clamp(max=float(weights.min()) * max_ratio)
    return (weights / weights.mean()).float()


def segmentation_loss(
    logits: Tensor,
    target: Tensor,
    class_weights: Tensor | None = None,
    dice_weight: float = 1.0,
    ce_weight: float = 1.0,
) -> Tensor:
    """Dice + CE of logits (B,K,H,W) against target (B,H,W) long in [0,K); scalar.

    Dice: MONAI's soft Dice on softmax probabilities over the foreground classes, pooled over the batch
    (batch=True) so a class absent from one slice of a tiny batch does not dominate. CE: weighted by
    ``class_weights`` (K,) when given.
    """
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"expected logits (B,K,H,W) and target (B,H,W), got {logits.shape}, {target.shape}")
    if logits.shape[1] < 2:
        raise ValueError("segmentation_loss needs at least 2 classes (background + one foreground)")
    loss = logits.new_zeros(())
    if dice_weight:
        dice = DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)
        loss = loss + dice_weight * dice(logits, target[:, None])
    if ce_weight:
        weight = None if class_weights is None else class_weights.to(logits.device, logits.dtype)
        loss = loss + ce_weight * F.cross_entropy(logits, target.long(), weight=weight)
    return loss
