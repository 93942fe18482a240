"""Conv-norm-activation building blocks of the 2D U-Net.

GroupNorm, not BatchNorm: fine-tuning batches are tiny and drawn from 1-3 slices (GCL_SPEC.md), so batch
statistics would differ between training and evaluation.
"""

from __future__ import annotations

from torch import Tensor, nn

NEGATIVE_SLOPE = 0.01


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with min(groups, channels) groups, reduced further until it divides ``channels``."""
    g = max(1, min(groups, channels))
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels)


class ConvNormAct(nn.Module):
    """3x3 conv (no bias: the norm removes it) -> GroupNorm -> LeakyReLU; (B,C_in,H,W) -> (B,C_out,H,W)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm = group_norm(out_channels, groups)
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class DoubleConv(nn.Sequential):
    """Two ConvNormAct blocks, the unit of every U-Net level; (B,C_in,H,W) -> (B,C_out,H,W)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int = 8) -> None:
        super().__init__(
            ConvNormAct(in_channels, out_channels, groups),
            ConvNormAct(out_channels, out_channels, groups),
        )
