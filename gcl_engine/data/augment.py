"""Augmentation: batched random affines with a known inverse, and MONAI intensity transforms.

The geometric part is our own (a batched ``affine_grid``) because pixel-level contrast needs to map each
view back onto its base slice; MONAI's per-sample intensity transforms do the rest. Every random draw is
seeded from ``(seed, step, sample)``, so a batch's augmentation does not depend on how it is split.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms import (
    Compose,
    RandAdjustContrast,
    RandGaussianNoise,
    RandGaussianSmooth,
    RandScaleIntensity,
    RandShiftIntensity,
)


def random_affines(n: int, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """(n, 2, 3) ``affine_grid`` matrices: rotation +-15 deg, scale 0.85-1.15, x-flip, shift +-5%."""
    u = torch.rand(n, 5, generator=generator)
    angle = (u[:, 0] * 2 - 1) * math.radians(15) * strength
    scale = 1 + (u[:, 1] * 2 - 1) * 0.15 * strength
    flip = torch.where(u[:, 2] < 0.5 * min(strength, 1.0), -1.0, 1.0)
    shift = (u[:, 3:5] * 2 - 1) * 0.05 * strength
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip, cos
    theta[:, :, 2] = shift
    return theta


def warp(images: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Resample (n, C, H, W) with ``theta`` mapping output to input coordinates."""
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid.to(images.device), mode=mode, padding_mode="border", align_corners=False)


def invert_affines(theta: torch.Tensor) -> torch.Tensor:
    """Inverse of each (2, 3) affine."""
    a_inv = torch.linalg.inv(theta[:, :, :2])
    return torch.cat([a_inv, -(a_inv @ theta[:, :, 2:])], dim=2)


def align_to_base(maps: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample view maps (n, D, h, w) onto their base slice's grid; also return validity (n, h, w).

    A base location is valid when the view actually saw it (its source point lies inside the view).
    """
    inv = invert_affines(theta.double()).to(maps.dtype)
    n, _, h, w = maps.shape
    grid = F.affine_grid(inv, [n, 1, h, w], align_corners=False).to(maps.device)
    aligned = F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    valid = (grid.abs() <= 1.0 - 1.0 / max(h, w)).all(dim=-1)
    return aligned, valid


class IntensityAugment:
    """MONAI intensity transforms, each sample seeded on its own (split-invariant)."""

    def __init__(self, strength: float = 1.0):
        s = strength
        self.transform = Compose([
            RandScaleIntensity(factors=0.1 * s, prob=0.8),
            RandShiftIntensity(offsets=0.1 * s, prob=0.8),
            RandAdjustContrast(gamma=(1 - 0.3 * s, 1 + 0.5 * s), prob=0.5),
            RandGaussianSmooth(sigma_x=(0.25, 1.0), sigma_y=(0.25, 1.0), prob=0.3),
            RandGaussianNoise(std=0.05 * s, prob=0.5),
        ])

    def __call__(self, images: torch.Tensor, seeds: np.ndarray) -> torch.Tensor:
        """(n, 1, H, W) CPU tensor, one integer seed per sample."""
        out = torch.empty_like(images)
        for i in range(images.shape[0]):
            self.transform.set_random_state(seed=int(seeds[i]) % (2**32))
            out[i] = torch.as_tensor(self.transform(images[i]))
        return out
