"""Gradient Mitigator: PCGrad-style surgery across meta-label gradients (GCL_SPEC.md, our reading).

Random order: one permutation of the M meta labels is drawn per call from ``generator``; every g_m visits
the other labels in that permutation's order (skipping itself). Sharing the order across labels and, in
the fast variant, across samples makes the per-sample surgery equal to calling ``pcgrad`` per sample with
identically seeded generators.

Note: projecting against g_m' leaves g_m . g_m' = 0, but a later projection against g_m'' can make that dot
negative again when g_m' and g_m'' conflict with each other; as in PCGrad, only the last projection's
non-negativity is guaranteed (and all of them when the other gradients are mutually non-conflicting).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class MitigationStats:
    """conflict_rate: share of *unordered* pairs {m, m'} (m != m') with a negative raw dot product;
    cosines: (M,M) raw-gradient cosines. The fast variant averages both over samples."""

    conflict_rate: float
    cosines: Tensor


def _draw_order(m: int, generator: torch.Generator | None) -> list[int]:
    """One permutation of range(m), from ``generator`` (the global RNG when None)."""
    if m < 2:
        return list(range(m))
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randperm(m, generator=generator, device=device).tolist()


def _surgery(raw: Tensor, order: list[int]) -> Tensor:
    """Project (M,B,P) gradients per sample b; returns the mitigated (M,B,P).

    Each g_m is projected against the ORIGINAL g_m' (as PCGrad does), only where their dot is negative.
    """
    out = raw.clone()
    sq_norm = (raw * raw).sum(dim=-1)  # (M,B)
    for m in range(raw.shape[0]):
        g = out[m]  # (B,P), a view: updated in place
        for other in order:
            if other == m:
                continue
            dot = (g * raw[other]).sum(dim=-1)  # (B,)
            denom = sq_norm[other]
            conflict = (dot < 0) & (denom > 0)
            coef = torch.where(conflict, dot / denom.clamp_min(torch.finfo(raw.dtype).tiny), 0.0)
            g.sub_(coef[:, None] * raw[other])
    return out


def _stats(raw: Tensor) -> MitigationStats:
    """Cosines and conflict rate of raw (M,B,P) gradients, averaged over the B samples."""
    m = raw.shape[0]
    dots = torch.einsum("ibp,jbp->bij", raw, raw)  # (B,M,M)
    norms = dots.diagonal(dim1=1, dim2=2).clamp_min(0).sqrt()  # (B,M)
    denom = norms[:, :, None] * norms[:, None, :]
    cos = torch.where(denom > 0, dots / denom.clamp_min(torch.finfo(raw.dtype).tiny), 0.0)
    if m < 2:
        return MitigationStats(conflict_rate=0.0, cosines=cos.mean(dim=0))
    upper = torch.triu(torch.ones(m, m, dtype=torch.bool, device=raw.device), diagonal=1)
    rate = (dots[:, upper] < 0).double().mean()
    return MitigationStats(conflict_rate=float(rate), cosines=cos.mean(dim=0))


def pcgrad(grads: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, MitigationStats]:
    """Exact PCGrad on M flattened gradients (M,P) -> (summed mitigated gradient (P,), stats)."""
    if grads.ndim != 2:
        raise ValueError(f"pcgrad expects (M,P) gradients, got shape {tuple(grads.shape)}")
    raw = grads[:, None, :]  # (M,1,P)
    order = _draw_order(grads.shape[0], generator)
    return _surgery(raw, order).sum(dim=0)[0], _stats(raw)


def mitigate_per_sample(
    grads: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, MitigationStats]:
    """Fast variant: the same surgery per sample on feature gradients (M,B,...) -> ((B,...), stats).

    Vectorised over samples; one order per call shared by all samples. Stats are averaged over samples.
    """
    if grads.ndim < 2:
        raise ValueError(f"mitigate_per_sample expects (M,B,...) gradients, got shape {tuple(grads.shape)}")
    m, b = grads.shape[:2]
    raw = grads.reshape(m, b, -1)  # (M,B,P)
    order = _draw_order(m, generator)
    return _surgery(raw, order).sum(dim=0).reshape(grads.shape[1:]), _stats(raw)


def exact_parameter_gradients(losses: list[Tensor], params: list[nn.Parameter]) -> Tensor:
    """Flattened gradient of each loss wrt ``params``: (M,P); zeros for parameters a loss does not use.

    The graph is retained so callers can back-propagate other losses (e.g. the heads') afterwards.
    """
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        flat = [
            torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
            for p, g in zip(params, grads, strict=True)
        ]
        rows.append(torch.cat(flat))
    return torch.stack(rows)


def assign_flat_gradient(params: list[nn.Parameter], flat: Tensor) -> None:
    """Add a flat (P,) vector into the params' ``.grad`` (created when None), in ``params`` order."""
    total = sum(p.numel() for p in params)
    if flat.numel() != total:
        raise ValueError(f"flat gradient has {flat.numel()} entries, params have {total}")
    offset = 0
    for p in params:
        piece = flat[offset : offset + p.numel()].view_as(p).to(p.dtype)
        if p.grad is None:
            p.grad = piece.clone()
        else:
            p.grad.add_(piece)
        offset += p.numel()
