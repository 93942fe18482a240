"""Gradient Filter: which pixel locations / pairs the pixel-wise contrast trains on (GCL_SPEC.md).

Variant A (default): saliency of each encoder-output location = norm of the image loss's gradient there;
keep the top ratio of locations per slice. Variant B: keep, per anchor, the k pairs whose closed-form
logit gradient is largest in magnitude. Ties are broken deterministically: the lower flat index wins.
"""

from __future__ import annotations

import torch
from torch import Tensor


def feature_saliency(grad_F: Tensor) -> Tensor:
    """L2 norm over channels of the gradient wrt the encoder output: (B,C,h,w) -> (B,h,w), detached."""
    return grad_F.detach().norm(dim=1)


def _rank_descending(scores: Tensor) -> Tensor:
    """Rank (0 = largest) of each entry within its row of (R,L) scores; ties: lower index ranks first."""
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return ranks.scatter_(1, order, positions)


def topk_location_mask(saliency: Tensor, ratio: float, valid: Tensor | None = None) -> Tensor:
    """Keep the top ``ratio`` of valid locations per slice by saliency: (B,h,w) -> (B,h,w) bool.

    Slice b keeps exactly max(1, round(ratio * n_valid_b)) locations (Python rounding, half to even),
    none if it has no valid location; invalid locations are never kept.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    b = saliency.shape[0]
    flat = saliency.detach().reshape(b, -1).float()
    ok = torch.ones_like(flat, dtype=torch.bool) if valid is None else valid.reshape(b, -1).bool()
    n_valid = ok.sum(dim=1)  # (B,)
    k = torch.round(n_valid.double() * ratio).long().clamp(min=1)
    k = torch.minimum(k, n_valid)
    scores = torch.where(ok, flat, torch.full_like(flat, -torch.inf))
    keep = (_rank_descending(scores) < k[:, None]) & ok
    return keep.reshape(saliency.shape)


def topk_pair_mask(pair_grad: Tensor, k: int, always_keep: Tensor | None = None) -> Tensor:
    """Per anchor row of (N,N) pair gradients, keep the k off-diagonal entries of largest |value|.

    Decision: positives are NOT forced in by default, since with many positives (pixel contrast over
    meta labels) forcing them would make k meaningless; the closed-form gradient of a positive,
    softmax - 1/|P|, is usually large anyway. Pass ``always_keep`` (N,N) bool (e.g. the same-location
    positive) to add entries on top of the top k. The diagonal is never kept. k is clipped to N-1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = pair_grad.shape[0]
    diag = torch.eye(n, dtype=torch.bool, device=pair_grad.device)
    scores = pair_grad.detach().abs().float().masked_fill(diag, -torch.inf)
    keep = (_rank_descending(scores) < min(k, n - 1)) & ~diag
    if always_keep is not None:
        keep = keep | (always_keep.bool() & ~diag)
    return keep
