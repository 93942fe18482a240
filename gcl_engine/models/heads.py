"""Projection heads of GCL pre-training, both on the encoder output (GCL_SPEC.md, Network)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

NEGATIVE_SLOPE = 0.01


class ImageProjectionHead(nn.Module):
    """GAP -> Linear -> BatchNorm1d -> LeakyReLU -> Linear -> L2-normalise; (B,C,h,w) -> (B,out).

    The BatchNorm1d is what kept the embeddings from collapsing in our prototype (GCL_SPEC.md lessons).
    """

    def __init__(self, in_channels: int, hidden: int = 256, out: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
            nn.Linear(hidden, out),
        )

    def forward(self, features: Tensor) -> Tensor:
        pooled = features.mean(dim=(2, 3))  # (B,C)
        return F.normalize(self.mlp(pooled), dim=1)


class PixelProjectionHead(nn.Module):
    """1x1 conv -> LeakyReLU -> 1x1 conv -> L2-normalise per pixel; (B,C,h,w) -> (B,out,h,w)."""

    def __init__(self, in_channels: int, hidden: int = 128, out: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1),
            nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
            nn.Conv2d(hidden, out, kernel_size=1),
        )

    def forward(self, features: Tensor) -> Tensor:
        return F.normalize(self.mlp(features), dim=1)
