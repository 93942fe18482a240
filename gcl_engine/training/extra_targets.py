"""Training targets on the slices the user did not paint: the scan on screen is known, only its labels are not.

Two sources, each off unless its weight is set in FinetuneConfig:

* **the current model's confident pixels** (``pseudo_label_weight``): when a fine-tune continues from a
  model, that model predicts every unpainted slice once at the start; pixels whose top probability reaches
  ``pseudo_label_threshold`` become targets, the rest is unknown (self-training);
* **the interpolation between painted slices** (``interpolation_target_weight``): slices strictly inside the
  painted range take the shape-based interpolation as their target, drawn more often the nearer they lie to
  a painted slice (weight exp(-d / ``interpolation_target_reach_mm``)).

Each training step then adds a second, half-size batch drawn from these slices; its loss is scaled by the
weight. The painted slices' batch and loss are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gcl_engine.config import FinetuneConfig
from gcl_engine.data.interpolation import in_plane_mm, interpolate_between
from gcl_engine.data.preprocessing import prepare_label_slices, slices_along
from gcl_engine.losses import IGNORE_INDEX


@dataclass
class ExtraTargets:
    """Slices (m, S, S), targets (m, S, S) with IGNORE_INDEX where unknown, sampling weights (m,), loss weight."""

    slices: torch.Tensor
    targets: torch.Tensor
    sampling: np.ndarray
    loss_weight: float

    def __len__(self) -> int:
        return int(self.slices.shape[0])

    def draw(self, rng: np.random.Generator, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = rng.choice(len(self), size=count, p=self.sampling / self.sampling.sum())
        t = torch.as_tensor(idx)
        return self.slices[t], self.targets[t]


@torch.no_grad()
def model_pseudo_labels(model: torch.nn.Module, slices: torch.Tensor, unpainted: list[int], threshold: float,
                        batch_size: int = 16) -> torch.Tensor:
    """(len(unpainted), S, S) argmax labels where the model is confident, IGNORE_INDEX elsewhere;
    ``slices``: the network inputs (n, C, S, S)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(unpainted), batch_size):
        x = slices[unpainted[i:i + batch_size]].to(device)  # (b, C, S, S)
        prob = torch.softmax(model(x).float(), 1).cpu()
        top, label = prob.max(1)
        out.append(torch.where(top >= threshold, label, torch.full_like(label, IGNORE_INDEX)))
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, *slices.shape[2:]), dtype=torch.long)


def interpolation_targets(cfg: FinetuneConfig, labels_array: np.ndarray, painted: list[int], direction, spacing
                          ) -> tuple[list[int], torch.Tensor, np.ndarray]:
    """Slices strictly inside the painted range, their interpolated targets on the network grid, weights."""
    if len(painted) < 2:
        return [], torch.zeros(0), np.zeros(0)
    axis = cfg.preprocess.axis
    stack = slices_along(labels_array, axis)
    interp = interpolate_between(stack, painted, "sdf", cfg.unknown_value, in_plane_mm(spacing, axis))
    inside = [k for k in range(painted[0] + 1, painted[-1]) if k not in set(painted)]
    if not inside:
        return [], torch.zeros(0), np.zeros(0)
    volume_like = np.moveaxis(interp[inside], 0, axis)
    targets = prepare_label_slices(volume_like, cfg.preprocess, direction, spacing)
    dist = np.array([min(abs(k - p) for p in painted) for k in inside]) * float(spacing[2 - axis])
    return inside, targets, np.exp(-dist / cfg.interpolation_target_reach_mm)


def build_extra_targets(cfg: FinetuneConfig, model: torch.nn.Module, slices: torch.Tensor, labels_array: np.ndarray,
                        painted: list[int], continuing: bool, direction, spacing) -> ExtraTargets | None:
    """The extra pool of this fine-tune (None when every source is off or has nothing to offer)."""
    parts: list[tuple[torch.Tensor, torch.Tensor, np.ndarray, float]] = []
    if cfg.interpolation_target_weight > 0:
        inside, targets, weights = interpolation_targets(cfg, labels_array, painted, direction, spacing)
        if inside:
            parts.append((slices[inside], targets, weights, cfg.interpolation_target_weight))
    if cfg.pseudo_label_weight > 0 and continuing:
        unpainted = [k for k in range(slices.shape[0]) if k not in set(painted)]
        if unpainted:
            targets = model_pseudo_labels(model, slices, unpainted, cfg.pseudo_label_threshold)
            parts.append((slices[unpainted], targets, np.ones(len(unpainted)), cfg.pseudo_label_weight))
    if not parts:
        return None
    weight = float(np.mean([p[3] for p in parts]))
    return ExtraTargets(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]).long(),
                        np.concatenate([p[2] * p[3] for p in parts]), weight)
