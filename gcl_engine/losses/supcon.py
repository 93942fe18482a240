"""Supervised contrastive loss over one meta label (GCL_SPEC.md, Losses; Khosla et al. 2020, as in SPCL).

With s_ij = z_i . z_j / tau (the *scaled* logits, row i = anchor i) and P(i) = {p != i : y_p = y_i}:

    L = mean over anchors i with |P(i)| > 0 of  -(1/|P(i)|) sum_{p in P(i)} log softmax_{a != i}(s_i)_p

SimCLR is the special case where every slice is its own class and has exactly two views.

A negative label means *unknown*: that sample is no anchor, no positive and no negative (it leaves the loss),
so a missing attribute never invents positives (GCL_SPEC.md's meta labels; benchmarks/README.md, few-shot).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _self_mask(n: int, device: torch.device) -> Tensor:
    """(N,N) bool, True on the diagonal."""
    return torch.eye(n, dtype=torch.bool, device=device)


def positive_mask(labels: Tensor) -> Tensor:
    """(N,) labels -> (N,N) bool: j is a positive of anchor i (same known label, j != i)."""
    known = labels >= 0
    same = (labels[:, None] == labels[None, :]) & known[:, None] & known[None, :]
    return same & ~_self_mask(labels.numel(), labels.device)


def _hide_unknown(logits: Tensor, labels: Tensor) -> Tensor:
    """Unknown-label columns take the diagonal's fill: out of every anchor's softmax."""
    unknown = labels < 0
    if not bool(unknown.any()):
        return logits
    return logits.masked_fill(unknown[None, :], -torch.finfo(logits.dtype).max / 4)


def _log_softmax_without_self(logits: Tensor) -> Tensor:
    """Row-wise log softmax over a != i of (N,N) logits; the diagonal gets a large negative finite value.

    A finite fill (not -inf) keeps 0 * diagonal finite, so masked sums never produce NaN.
    """
    fill = -torch.finfo(logits.dtype).max / 4
    masked = logits.masked_fill(_self_mask(logits.shape[0], logits.device), fill)
    shifted = masked - masked.max(dim=1, keepdim=True).values.detach()
    return shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))


def supcon_from_logits(logits: Tensor, labels: Tensor) -> Tensor:
    """SupCon from precomputed scaled logits (N,N) and labels (N,); scalar.

    Anchors without positives are left out of the mean; with none at all, returns 0 still tied to the graph.
    Half-precision logits (autocast) are computed in float32.
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # softmax sums in half precision lose the small terms
    pos = positive_mask(labels)
    n_pos = pos.sum(dim=1)
    anchors = n_pos > 0
    if not bool(anchors.any()):
        return logits.sum() * 0
    log_prob = _log_softmax_without_self(_hide_unknown(logits, labels))
    mean_log_pos = (log_prob * pos).sum(dim=1) / n_pos.clamp(min=1)
    return -mean_log_pos[anchors].mean()


def supcon_loss(z: Tensor, labels: Tensor, temperature: float, keep_pairs: Tensor | None = None) -> Tensor:
    """Supervised contrastive loss of L2-normalised embeddings z (N,D) with labels (N,) long (< 0: unknown).

    keep_pairs (N,N) bool (Gradient Filter variant B): pairs not kept keep their value in the loss but
    pass no gradient, so the loss value is unchanged and only kept pairs train the encoder.
    """
    if z.shape[0] != labels.shape[0]:
        raise ValueError(f"z has {z.shape[0]} rows but labels has {labels.shape[0]}")
    logits = z @ z.T / temperature  # (N,N)
    if keep_pairs is not None:
        logits = torch.where(keep_pairs, logits, logits.detach())
    return supcon_from_logits(logits, labels)


@torch.no_grad()
def pair_logit_gradient(z: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """Closed-form dL/ds_ij (N,N) of supcon_loss, no autograd.

    s is the scaled logits matrix as computed (s_ij = z_i . z_j / tau), each entry its own variable, row
    i = anchor i; so s_ij and s_ji are separate and only anchor i's term depends on s_ij:

        dL/ds_ij = (softmax_{a != i}(s_i)_j - 1[j in P(i)] / |P(i)|) / n_anchors   for anchors i, j != i,

    zero on the diagonal and on rows without positives. (dL/d(z_i . z_j) is this divided by tau.)
    """
    logits = z @ z.T / temperature
    pos = positive_mask(labels)
    n_pos = pos.sum(dim=1, keepdim=True)
    anchors = n_pos > 0  # (N,1)
    n_anchors = int(anchors.sum())
    if n_anchors == 0:
        return torch.zeros_like(logits)
    soft = torch.exp(_log_softmax_without_self(_hide_unknown(logits, labels)))  # masked entries underflow to 0
    grad = soft - pos.to(logits.dtype) / n_pos.clamp(min=1)
    return torch.where(anchors, grad, torch.zeros_like(grad)) / n_anchors


class SupConLoss(nn.Module):
    """Module form of supcon_loss with a fixed temperature (0.07 image, 0.1 pixel by default config)."""

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, z: Tensor, labels: Tensor, keep_pairs: Tensor | None = None) -> Tensor:
        return supcon_loss(z, labels, self.temperature, keep_pairs)
