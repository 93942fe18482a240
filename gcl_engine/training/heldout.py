"""How good the model was on the slices the user painted since it was trained: a held-out score for free.

When a fine-tune continues from a model, the slices painted since that model was saved were never seen by
it, so its prediction there is an honest test. Their Dice (mean over the classes present in the painting or
the prediction, known voxels only) is reported as a Metric at step 0 and kept with the model, one entry per
fine-tune: the curve a user reads as "how much better each round made the model on what it had not seen".
"""

from __future__ import annotations

import numpy as np
import torch

from gcl_engine.data.preprocessing import slices_along
from gcl_engine.data.slice_layout import SliceLayout
from gcl_engine.models.predict import predict_labels


def slice_dice(pred: np.ndarray, ref: np.ndarray, known: np.ndarray) -> float | None:
    """Mean Dice over the foreground classes present in ``ref`` or ``pred`` on known voxels (None: none)."""
    scores = []
    p, r = pred[known], ref[known]
    for c in np.union1d(np.unique(p), np.unique(r)):
        if c <= 0:
            continue
        a, b = p == c, r == c
        scores.append(2.0 * float((a & b).sum()) / float(a.sum() + b.sum()))
    return float(np.mean(scores)) if scores else None


def heldout_score(model: torch.nn.Module, inputs: torch.Tensor, layout: SliceLayout, labels: np.ndarray,
                  axis: int, new_slices: list[int], unknown_value: int | None) -> dict | None:
    """{"slices", "dice"} of ``model`` on ``new_slices`` (None when there are none or nothing to score)."""
    if not new_slices:
        return None
    pred = predict_labels(model, inputs[new_slices], layout).numpy()
    ref = slices_along(labels, axis)[new_slices]
    known = ref != unknown_value if unknown_value is not None else np.ones(ref.shape, bool)
    dice = slice_dice(pred, ref, known)
    return None if dice is None else {"slices": [int(k) for k in new_slices], "dice": round(dice, 4)}
