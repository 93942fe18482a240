"""Losses: meta-label supervised contrast (pre-training) and Dice + CE (fine-tuning)."""

from gcl_engine.losses.segmentation import IGNORE_INDEX, class_weights_from_labels, segmentation_loss
from gcl_engine.losses.supcon import (
    SupConLoss,
    pair_logit_gradient,
    positive_mask,
    supcon_from_logits,
    supcon_loss,
)

__all__ = [
    "IGNORE_INDEX",
    "SupConLoss",
    "class_weights_from_labels",
    "pair_logit_gradient",
    "positive_mask",
    "segmentation_loss",
    "supcon_from_logits",
    "supcon_loss",
]
