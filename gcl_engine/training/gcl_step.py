"""One GCL pre-training step: image and pixel contrast per meta label, Mitigator, Filter, one backward.

Shapes: the batch holds N base slices seen in two views, 2N images ordered [view 0 of all, view 1 of all].
F (2N, C, h, w) is the encoder output (the image branch's input); the pixel branch reads encoder level
``cfg.pixel_level`` (F itself by default). Gradients of each meta label's loss are taken with respect to a
detached copy of the (gathered) map its branch reads; the Mitigator combines them per branch (per sample:
``fast``; on the encoder's flattened parameter gradients: ``exact``), and the encoder receives the combined
gradients in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gcl_engine.config import PretrainConfig
from gcl_engine.data.augment import align_to_base
from gcl_engine.data.meta_labels import UNKNOWN_BASE
from gcl_engine.losses import pair_logit_gradient, supcon_loss
from gcl_engine.training.distributed import DistContext, all_reduce_sum, gather_detached
from gcl_engine.training.gradient_filter import feature_saliency, topk_location_mask, topk_pair_mask
from gcl_engine.training.methods import MethodPlan
from gcl_engine.training.mitigator import assign_flat_gradient, mitigate_per_sample, pcgrad


@dataclass
class StepInputs:
    views: torch.Tensor  # (2N_local, 1, S, S) this rank's share of the views
    theta: torch.Tensor  # (2N, 2, 3) every view's affine (global)
    labels: dict[str, torch.Tensor]  # name -> (N,) long, per base slice (global)


@dataclass
class StepOutput:
    metrics: dict[str, float] = field(default_factory=dict)


def _branch_gradients(losses: dict[str, torch.Tensor], leaf: torch.Tensor) -> torch.Tensor:
    """(M, *leaf.shape): gradient of each meta label's loss with respect to the detached features."""
    grads = [torch.autograd.grad(loss, leaf, retain_graph=True, allow_unused=True)[0] for loss in losses.values()]
    return torch.stack([torch.zeros_like(leaf) if g is None else g for g in grads])


def loss_labels(labels: dict[str, torch.Tensor], cfg: PretrainConfig) -> dict[str, torch.Tensor]:
    """Meta-label codes as the losses read them: with ``unknown_values='ignore'`` an unknown value (coded
    UNKNOWN_BASE + volume index by the table) becomes -1, which the SupCon loss leaves out; with ``'volume'``
    it stays a positive of the slices of its own volume (the behaviour before; on a pool where most phases
    are unknown it made ``phase`` a copy of ``subject``)."""
    if cfg.unknown_values != "ignore":
        return labels
    return {k: torch.where(v >= UNKNOWN_BASE, torch.full_like(v, -1), v) for k, v in labels.items()}


def _saliency_at(g_img_sum: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The image branch's saliency (2N, h, w) at the pixel branch's resolution (bilinear when finer)."""
    sal = feature_saliency(g_img_sum)
    if tuple(sal.shape[-2:]) == tuple(size):
        return sal
    return torch.nn.functional.interpolate(sal.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0]


def _pixel_losses(net, feats_all, g_img_sum, labels, inputs, cfg: PretrainConfig, plan: MethodPlan, metrics):
    q = net.pixel_head(feats_all)  # (2N, D, h, w), unit norm per pixel
    aligned, valid = align_to_base(q, inputs.theta.to(q.device))
    aligned = torch.nn.functional.normalize(aligned, dim=1)
    n2, d, h, w = aligned.shape
    n = n2 // 2
    both_valid = valid[:n] & valid[n:]  # (N, h, w)
    if plan.gradient_filter == "A" and g_img_sum is not None:
        sal, _ = align_to_base(_saliency_at(g_img_sum, q.shape[-2:]).unsqueeze(1), inputs.theta.to(q.device))
        keep = topk_location_mask(sal[:n, 0] + sal[n:, 0], cfg.filter_ratio, both_valid)
    else:
        keep = both_valid
    metrics["pixel/kept_share"] = float(keep.sum()) / float(n * h * w)
    slice_idx, ys, xs = torch.nonzero(keep, as_tuple=True)  # selected (slice, location) cells
    emb = torch.cat([aligned[slice_idx, :, ys, xs], aligned[slice_idx + n, :, ys, xs]])  # (2K, D)
    location = (ys * w + xs).repeat(2)
    slices = slice_idx.repeat(2)
    losses = {}
    for name in plan.image_labels:
        y = labels[name].to(q.device)[slices]
        key = torch.stack([y, location], 1) if cfg.pixel_positive == "location" else y.unsqueeze(1)
        pix_labels = torch.where(y >= 0, torch.unique(key, dim=0, return_inverse=True)[1], -1)
        keep_pairs = None
        if plan.gradient_filter == "B":
            pg = pair_logit_gradient(emb.detach(), pix_labels, cfg.temperature_pixel)
            keep_pairs = topk_pair_mask(pg, cfg.filter_top_k)
        losses[name] = supcon_loss(emb, pix_labels, cfg.temperature_pixel, keep_pairs=keep_pairs)
    return losses


def gcl_step(net, encoder_call, inputs: StepInputs, cfg: PretrainConfig, plan: MethodPlan,
             ctx: DistContext, generator: torch.Generator, autocast) -> StepOutput:
    """Compute the losses, mitigate, and leave gradients in ``.grad`` (the caller steps the optimizer)."""
    metrics: dict[str, float] = {}
    with autocast():
        maps = encoder_call(inputs.views)
    feats = maps[-1].float()
    feats_all = gather_detached(feats, ctx).requires_grad_(True)
    z = net.image_head(feats_all)
    labels = loss_labels(inputs.labels, cfg)
    view_labels = {k: v.to(z.device).repeat(2) for k, v in labels.items()}
    img_losses = {m: supcon_loss(z, view_labels[m], cfg.temperature_image) for m in plan.image_labels}
    g_img = _branch_gradients(img_losses, feats_all)
    metrics["embedding_std"] = float(z.detach().std(0).mean())
    branches = {"img": (img_losses, g_img, 1.0)}
    inputs_of = {"img": feats}  # the (local, attached) map each branch's gradients are taken against
    if plan.pixel:
        pfeats, pfeats_all = feats, feats_all
        if not net.pixel_reads_bottleneck:
            with autocast():
                pfeats = net.pixel_map(maps).float()
            pfeats_all = gather_detached(pfeats, ctx).requires_grad_(True)
        pix_losses = _pixel_losses(net, pfeats_all, g_img.sum(0), labels, inputs, cfg, plan, metrics)
        branches["pix"] = (pix_losses, _branch_gradients(pix_losses, pfeats_all), cfg.lambda_pixel)
        inputs_of["pix"] = pfeats
    head_loss = sum(w * sum(losses.values()) for losses, _, w in branches.values())
    lo = ctx.rank * feats.shape[0]
    local = slice(lo, lo + feats.shape[0])
    if plan.mitigate and cfg.mitigator == "exact":
        _exact_encoder_update(net, inputs_of, branches, local, ctx, generator, metrics)
        head_loss.backward()
    else:
        surrogate = torch.zeros((), device=feats.device)
        for bname, (_, grads, weight) in branches.items():
            if plan.mitigate and grads.shape[0] > 1:
                mitigated, stats = mitigate_per_sample(grads, generator)
                metrics[f"{bname}/conflict_rate"] = float(stats.conflict_rate)
                _cosine_metrics(metrics, bname, stats.cosines, list(branches[bname][0]))
            else:
                mitigated = grads.sum(0)
                _raw_conflicts(metrics, bname, grads, list(branches[bname][0]))
            mine = inputs_of[bname]
            surrogate = surrogate + (mine * (weight * mitigated[local]).to(mine.dtype)).sum() * ctx.world_size
        (surrogate + head_loss).backward()
        _average_decoder_gradients(net, ctx)
    for bname, (losses, _, _) in branches.items():
        for m, loss in losses.items():
            metrics[f"{bname}/loss/{m}"] = float(loss.detach())
    metrics["loss"] = float(head_loss.detach())
    return StepOutput(metrics)


def _average_decoder_gradients(net, ctx: DistContext) -> None:
    """DDP averages the wrapped encoder's gradients; the pre-trained decoder trunk gets the same here."""
    if not ctx.enabled or net.decoder is None:
        return
    for p in net.decoder.parameters():
        if p.grad is not None:
            p.grad = all_reduce_sum(p.grad, ctx) / ctx.world_size


def _exact_encoder_update(net, inputs_of, branches, local, ctx, generator, metrics) -> None:
    """PCGrad on the shared part's flattened parameter gradients: one backward per meta label."""
    params = [p for p in net.shared_parameters() if p.requires_grad]
    total = None
    for bname, (losses, grads, weight) in branches.items():
        feats = inputs_of[bname]
        flat = []
        for m in range(grads.shape[0]):
            g = torch.autograd.grad(feats, params, grad_outputs=grads[m, local].to(feats.dtype),
                                    retain_graph=True, allow_unused=True)
            parts = [torch.zeros_like(p) if gi is None else gi for p, gi in zip(params, g, strict=True)]
            vec = torch.cat([part.reshape(-1) for part in parts])
            flat.append(all_reduce_sum(vec, ctx))
        stacked = torch.stack(flat)
        if stacked.shape[0] > 1:
            combined, stats = pcgrad(stacked, generator)
            metrics[f"{bname}/conflict_rate"] = float(stats.conflict_rate)
            _cosine_metrics(metrics, bname, stats.cosines, list(losses))
        else:
            combined = stacked[0]
        total = weight * combined if total is None else total + weight * combined
    assign_flat_gradient(params, total)


def _cosine_metrics(metrics, bname, cosines, names) -> None:
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            metrics[f"{bname}/cos/{names[i]}~{names[j]}"] = float(cosines[i, j])


def _raw_conflicts(metrics, bname, grads, names) -> None:
    """Conflict diagnostics for the un-mitigated methods, measured like the fast mitigator's: per sample."""
    if grads.shape[0] < 2:
        return
    flat = torch.nn.functional.normalize(grads.flatten(2).transpose(0, 1), dim=2)  # (B, M, P)
    cos = flat @ flat.transpose(1, 2)  # (B, M, M)
    m = len(names)
    upper = torch.triu(torch.ones(m, m, dtype=torch.bool), diagonal=1)
    metrics[f"{bname}/conflict_rate"] = float((cos[:, upper] < 0).float().mean())
    _cosine_metrics(metrics, bname, cos.mean(0), names)
