"""2D U-Net split into an encoder (pre-trained by GCL) and a decoder (initialised at fine-tuning).

Level l has ``base * 2**l`` channels at resolution H / 2**l; the last encoder level is the bottleneck with
``cfg.encoder_channels`` channels at H / 2**(levels-1). Inputs need H, W divisible by 2**(levels-1).
The forward passes use only fixed-length loops over modules, so they trace and export to ONNX.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gcl_engine.config import ModelConfig
from gcl_engine.models.blocks import DoubleConv


def level_channels(cfg: ModelConfig) -> list[int]:
    """Channel count of each level: [b, 2b, ..., b * 2**(levels-1)]."""
    return [cfg.base_channels * 2**level for level in range(cfg.levels)]


class UNetEncoder(nn.Module):
    """(B,C_in,H,W) -> list of ``levels`` maps, map l of shape (B, b*2**l, H/2**l, W/2**l)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        chans = level_channels(cfg)
        ins = [cfg.in_channels, *chans[:-1]]
        self.blocks = nn.ModuleList(DoubleConv(i, o, cfg.groups) for i, o in zip(ins, chans, strict=True))
        self.pool = nn.MaxPool2d(kernel_size=2)
        self.out_channels = chans[-1]

    def forward(self, x: Tensor) -> list[Tensor]:
        features: list[Tensor] = []
        for index, block in enumerate(self.blocks):
            x = block(x if index == 0 else self.pool(x))
            features.append(x)
        return features


class UpBlock(nn.Module):
    """Transposed-conv x2 upsampling, concatenation with the skip map, DoubleConv.

    (B,C_in,h,w) + skip (B,C_out,2h,2w) -> (B,C_out,2h,2w).
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels, groups)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


def up_blocks(cfg: ModelConfig, count: int | None = None) -> nn.ModuleList:
    """The decoder's up-blocks from the bottleneck upwards (all, or the first ``count``)."""
    chans = level_channels(cfg)
    levels = list(reversed(range(cfg.levels - 1)))[:count]
    return nn.ModuleList(UpBlock(chans[level + 1], chans[level], cfg.groups) for level in levels)


def decode(ups: nn.ModuleList, features: list[Tensor]) -> Tensor:
    """Run ``ups`` from the bottleneck with the encoder's skip maps; the map at the last block's level."""
    x = features[-1]
    for up, skip in zip(ups, features[-2::-1][: len(ups)], strict=True):
        x = up(x, skip)
    return x


class UNetDecoder(nn.Module):
    """Encoder feature list (as UNetEncoder returns it) -> logits (B, num_classes, H, W)."""

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__()
        self.ups = up_blocks(cfg)
        self.head = nn.Conv2d(level_channels(cfg)[0], num_classes, kernel_size=1)

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.head(decode(self.ups, features))


class DecoderTrunk(nn.Module):
    """The decoder's first up-blocks, pre-trained by the pixel branch (``pixel_features='decoder'``).

    Its state_dict keys (``ups.N...``) are those of :class:`UNetDecoder`, so fine-tuning loads them into
    the segmentation network's decoder; the remaining blocks and the head start fresh.
    """

    def __init__(self, cfg: ModelConfig, count: int) -> None:
        super().__init__()
        self.ups = up_blocks(cfg, count)

    def forward(self, features: list[Tensor]) -> Tensor:
        return decode(self.ups, features)


class UNet2D(nn.Module):
    """Encoder + decoder; (B,C_in,H,W) -> logits (B,num_classes,H,W)."""

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__()
        self.encoder = UNetEncoder(cfg)
        self.decoder = UNetDecoder(cfg, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))
