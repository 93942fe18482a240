"""Fine-tuning loss: soft Dice over foreground classes + class-weighted cross-entropy.

Class-weighted CE is the fine-tuning default: with plain CE + Dice only the largest organ was learnt
(GCL_SPEC.md, second round of measured lessons).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import Tensor

# The target value of a pixel whose label is unknown (torch's cross-entropy default ignore_index)
IGNORE_INDEX = -100


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
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Dice + CE of logits (B,K,H,W) against target (B,H,W) long in [0,K) or ``ignore_index``; scalar.

    Pixels labelled ``ignore_index`` (unknown: scribbles leave most of a slice unpainted) take no part in
    either term. Dice: MONAI's soft Dice on softmax probabilities over the foreground classes, over the known
    pixels, pooled over the batch (batch=True) so a class absent from one slice of a tiny batch does not
    dominate. CE: weighted by ``class_weights`` (K,) when given, averaged over the known pixels.
    """
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"expected logits (B,K,H,W) and target (B,H,W), got {logits.shape}, {target.shape}")
    if logits.shape[1] < 2:
        raise ValueError("segmentation_loss needs at least 2 classes (background + one foreground)")
    target = target.long()
    known = target != ignore_index
    loss = logits.new_zeros(())
    if not bool(known.any()):
        return loss + 0.0 * logits.sum()  # nothing known in this batch: no signal, but a graph to step
    if dice_weight:
        probs = torch.softmax(logits, dim=1)
        safe = torch.where(known, target, torch.zeros_like(target))
        onehot = F.one_hot(safe, logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
        mask = known[:, None].to(probs.dtype)
        dice = DiceLoss(include_background=False, to_onehot_y=False, softmax=False, batch=True)
        loss = loss + dice_weight * dice(probs * mask, onehot * mask)
    if ce_weight:
        weight = None if class_weights is None else class_weights.to(logits.device, logits.dtype)
        loss = loss + ce_weight * F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)
    return loss
