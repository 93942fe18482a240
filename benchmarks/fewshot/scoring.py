"""Dice on held-out slices (per-volume 3D and slice-aggregated), the linear probe, pre-training diagnostics."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gcl_engine.config import ModelConfig, PreprocessConfig
from gcl_engine.data.preprocessing import prepare_label_slices, prepare_volume_slices
from gcl_engine.losses import class_weights_from_labels
from gcl_engine.models.unet2d import UNetEncoder

# --- Dice -------------------------------------------------------------------------------------------


def dice_scores(pred: np.ndarray, ref: np.ndarray, classes: Sequence[int]) -> tuple[dict[int, float], dict[int, float]]:
    """Per class: 3D Dice over the stack, and the mean over slices of per-slice Dice.

    Both arrays are (n_slices, H, W) on the reference grid. A class whose reference is empty over the
    stack is not scored (no entry). Slice-aggregated: every slice where the reference or the prediction
    holds the class counts (a false positive on a slice without the class scores 0 there).
    """
    d3: dict[int, float] = {}
    ds: dict[int, float] = {}
    for c in classes:
        r, p = ref == c, pred == c
        rs, ps = int(r.sum()), int(p.sum())
        if rs == 0:
            continue
        d3[c] = 2.0 * int((r & p).sum()) / (rs + ps)
        r2, p2 = r.reshape(r.shape[0], -1), p.reshape(p.shape[0], -1)
        inter, rn, pn = (r2 & p2).sum(1), r2.sum(1), p2.sum(1)
        used = (rn + pn) > 0
        ds[c] = float(np.mean(2.0 * inter[used] / (rn[used] + pn[used])))
    return d3, ds


def mean_of(values: dict[str, float], names: Sequence[str] | None = None) -> float:
    vals = [v for k, v in values.items() if names is None or k in names]
    return float(np.mean(vals)) if vals else float("nan")


# --- linear probe ------------------------------------------------------------------------------------


def encoder_from(checkpoint: str | None, model: ModelConfig, seed: int) -> UNetEncoder:
    """The pre-trained encoder of a checkpoint, or a seeded random one (the scratch row)."""
    torch.manual_seed(seed)
    enc = UNetEncoder(model)
    if checkpoint:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
        enc.load_state_dict({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")})
    return enc.eval()


def _probe_features(enc: UNetEncoder, x: torch.Tensor, res: int) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        feats = [f.float() for f in enc(x.unsqueeze(1))]

    def to_res(f: torch.Tensor) -> torch.Tensor:
        if f.shape[-1] > res:
            return F.adaptive_avg_pool2d(f, res)
        return F.interpolate(f, size=(res, res), mode="bilinear", align_corners=False) if f.shape[-1] < res else f

    return {"bottleneck": to_res(feats[-1]), "all_levels": torch.cat([to_res(f) for f in feats], 1)}


def _majority_labels(y: torch.Tensor, n_classes: int, res: int) -> torch.Tensor:
    onehot = F.one_hot(y, n_classes).permute(0, 3, 1, 2).float()
    return F.adaptive_avg_pool2d(onehot, res).argmax(1)


def linear_probe(enc: UNetEncoder, image: np.ndarray, modality: str, labels: np.ndarray, n_classes: int,
                 pre: PreprocessConfig, steps: int = 300, seed: int = 0,
                 geometry=None) -> dict[str, float]:
    """Mean foreground Dice of a 1x1 conv (logistic regression per pixel) on frozen encoder features.

    Features at 1/4 of the network input (bottleneck upsampled; or every level pooled / upsampled and
    concatenated), standardised; trained on the even slices against the majority label of each 4x4 block,
    class-weighted CE, Adam lr 1e-2, ``steps`` full-batch steps; scored by 3D Dice on the odd slices.
    """
    direction, spacing = (geometry.direction, geometry.spacing) if geometry is not None else (None, None)
    x = prepare_volume_slices(image, modality, pre, direction, spacing)  # as the engine lays the slices out
    y = prepare_label_slices(labels, pre, direction, spacing)
    res = pre.size // 4
    target = _majority_labels(y, n_classes, res)
    train = torch.arange(0, x.shape[0], 2)
    test = torch.arange(1, x.shape[0], 2)
    out = {}
    for name, f in _probe_features(enc, x, res).items():
        c = f.shape[1]
        ftr = f[train].permute(0, 2, 3, 1).reshape(-1, c)
        mu, sd = ftr.mean(0), ftr.std(0) + 1e-5
        ftr = (ftr - mu) / sd
        fte = ((f[test].permute(0, 2, 3, 1).reshape(-1, c)) - mu) / sd
        ytr = target[train].reshape(-1)
        torch.manual_seed(seed)
        lin = torch.nn.Linear(c, n_classes)
        opt = torch.optim.Adam(lin.parameters(), lr=1e-2, weight_decay=1e-4)
        w = class_weights_from_labels(ytr, n_classes)
        for _ in range(steps):
            loss = F.cross_entropy(lin(ftr), ytr, weight=w)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = lin(fte).argmax(1).reshape(len(test), res, res).numpy()
        ref = target[test].numpy()
        d3, _ = dice_scores(pred, ref, range(1, n_classes))
        out[name] = float(np.mean(list(d3.values()))) if d3 else float("nan")
    return out


# --- pre-training diagnostics ----------------------------------------------------------------------


def summarise_metrics(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Every logged metric averaged over the first and the last 10% of the steps (at least one step each)."""
    if not rows:
        return {}
    n = max(1, math.ceil(len(rows) * 0.1))
    keys = sorted({k for r in rows for k in r if k not in ("step", "lr", "volumes_per_batch")})
    out = {}
    for k in keys:
        first = [r[k] for r in rows[:n] if isinstance(r.get(k), (int, float))]
        last = [r[k] for r in rows[-n:] if isinstance(r.get(k), (int, float))]
        if first and last:
            out[k] = {"first": float(np.mean(first)), "last": float(np.mean(last))}
    return out
