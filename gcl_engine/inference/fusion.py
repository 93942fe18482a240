"""A prediction that respects what the user painted: painted voxels kept, and between painted slices the
network combined with the interpolation of the painted slices.

Interpolation between painted slices (data/interpolation.py) is exact on a painted slice and degrades with
the distance from it; the network degrades far less with distance but misses fine boundaries. So each slice
strictly inside the painted range mixes the two: p = (1 - w) p_network + w onehot(interpolation), with
w = exp(-d / reach), d the distance in mm to the nearest painted slice. Beyond the painted range there is no
interpolation (w = 0). ``reach`` is a PredictConfig field chosen on the annotation benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gcl_engine.data.interpolation import in_plane_mm, interpolate_between
from gcl_engine.data.painted import known_mask, painted_slices
from gcl_engine.errors import InputError


@dataclass(frozen=True)
class PaintedLabels:
    """What the user painted on a volume: a label map of the volume's shape, read by the painted-slice rules
    of :mod:`gcl_engine.data.painted` (``unknown_value`` for scribbles, ``slices`` to list them)."""

    labels: np.ndarray
    unknown_value: int | None = None
    slices: tuple[int, ...] | None = None


@dataclass
class FusionPlan:
    """Per slice along the model's axis: the painted labels, the interpolation, the interpolation's weight."""

    painted: list[int]
    stack: np.ndarray  # (n, H, W) the painted labels (unknown voxels as given)
    known: np.ndarray  # (n, H, W) bool: voxels whose label the user gave
    interpolation: np.ndarray  # (n, H, W)
    weight: np.ndarray  # (n,) in [0, 1]

    def is_painted(self, k: int) -> bool:
        return k in self._painted_set

    def fuse(self, k: int, probabilities: torch.Tensor) -> np.ndarray:
        """(K, H, W) network probabilities of slice k on the stored grid -> (H, W) labels."""
        w = float(self.weight[k])
        if w > 0:
            onehot = torch.zeros_like(probabilities)
            onehot.scatter_(0, torch.from_numpy(self.interpolation[k].astype(np.int64))[None].clamp(
                max=probabilities.shape[0] - 1), 1.0)
            probabilities = (1.0 - w) * probabilities + w * onehot
        return self.keep_painted(k, probabilities.argmax(0).numpy())

    def keep_painted(self, k: int, labels: np.ndarray) -> np.ndarray:
        """(H, W) labels of slice k with the voxels the user painted there put back."""
        if self.is_painted(k):
            labels = np.where(self.known[k], self.stack[k], labels)
        return labels

    def __post_init__(self) -> None:
        self._painted_set = set(self.painted)


def plan_fusion(painted: PaintedLabels, shape: tuple[int, ...], axis: int, spacing: tuple[float, float, float],
                reach_mm: float | None, method: str = "sdf", source: str | None = None) -> FusionPlan:
    """Precompute the interpolation and the weights for a volume of numpy ``shape`` and ITK ``spacing``."""
    if tuple(painted.labels.shape) != tuple(shape):
        raise InputError(source, f"painted labels of shape {painted.labels.shape} do not match the volume's {shape}")
    stack = np.moveaxis(np.asarray(painted.labels), axis, 0)
    marks = painted_slices(stack, painted.unknown_value, painted.slices, source)
    n = stack.shape[0]
    pixel_mm = in_plane_mm(spacing, axis)
    slice_mm = float(spacing[2 - axis])
    weight = np.zeros(n)
    if reach_mm and len(marks) >= 2:
        interp = interpolate_between(stack, marks, method, painted.unknown_value, pixel_mm)
        idx = np.arange(n)
        dist = np.abs(idx[:, None] - np.asarray(marks)[None]).min(1) * slice_mm
        inside = (idx > marks[0]) & (idx < marks[-1])
        weight[inside] = np.exp(-dist[inside] / reach_mm)
    else:
        interp = np.zeros(stack.shape, np.uint8)
    return FusionPlan(marks, stack, known_mask(stack, painted.unknown_value), interp, weight)
