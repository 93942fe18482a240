"""Intensity normalisation per modality, in-plane orientation and resampling to the network's fixed size.

One code path for pre-training, fine-tuning and inference, so a model always sees what it was trained on.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gcl_engine.config import PreprocessConfig
from gcl_engine.data.orientation import InPlaneOrientation, in_plane_orientation


def normalise_intensity(array: np.ndarray, modality: str, cfg: PreprocessConfig) -> np.ndarray:
    """CT: clip to the window and scale to [-1, 1]; otherwise percentile clip and z-score per volume."""
    data = array.astype(np.float32, copy=False)
    if modality == "CT":
        lo, hi = cfg.ct_window
        out = (np.clip(data, lo, hi) - lo) / (hi - lo) * 2.0 - 1.0
        return out.astype(np.float32)
    lo, hi = np.percentile(data, cfg.mr_percentiles)
    clipped = np.clip(data, lo, hi)
    std = float(clipped.std())
    return ((clipped - float(clipped.mean())) / (std if std > 1e-6 else 1.0)).astype(np.float32)


def slices_along(array: np.ndarray, axis: int) -> np.ndarray:
    """(n, H, W) view with the slicing axis first (axis 0 = ITK index k: no copy)."""
    return np.moveaxis(array, axis, 0)


def resize_slices(stack: np.ndarray | torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """(n, H, W) -> (n, size, size) float tensor; ``mode='nearest'`` for label maps."""
    t = torch.as_tensor(np.ascontiguousarray(stack) if isinstance(stack, np.ndarray) else stack)
    t = t.float().unsqueeze(1)
    if mode == "nearest":
        out = F.interpolate(t, size=(size, size), mode="nearest-exact")
    else:
        out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.squeeze(1)


def resize_back(maps: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(n, K, size, size) probabilities or logits -> (n, K, H, W), the inverse of :func:`resize_slices`."""
    return F.interpolate(maps.float(), size=shape, mode="bilinear", align_corners=False)


def slice_orientation(cfg: PreprocessConfig, direction: tuple[float, ...] | None) -> InPlaneOrientation:
    """The in-plane move applied before resizing (none with ``orientation='stored'`` or no direction)."""
    if cfg.orientation != "canonical":
        return InPlaneOrientation()
    return in_plane_orientation(direction, cfg.axis)


def prepare_volume_slices(array: np.ndarray, modality: str, cfg: PreprocessConfig,
                          direction: tuple[float, ...] | None = None) -> torch.Tensor:
    """Normalise a whole volume, cut it along ``cfg.axis``, orient (given the ITK direction) and resize:
    (n, size, size) float32."""
    normed = normalise_intensity(array, modality, cfg)
    return resize_slices(slice_orientation(cfg, direction).apply(slices_along(normed, cfg.axis)), cfg.size)


def prepare_label_slices(labels: np.ndarray, cfg: PreprocessConfig,
                         direction: tuple[float, ...] | None = None) -> torch.Tensor:
    """(n, size, size) long label maps, nearest-neighbour resampled along the same cut and orientation."""
    stack = slice_orientation(cfg, direction).apply(slices_along(labels, cfg.axis))
    return resize_slices(stack.astype(np.float32), cfg.size, mode="nearest").long()
