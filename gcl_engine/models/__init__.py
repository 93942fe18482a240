"""Networks: the 2D U-Net (encoder + decoder), the GCL projection heads, and the pre-training net."""

from __future__ import annotations

from torch import Tensor, nn

from gcl_engine.config import ModelConfig
from gcl_engine.models.blocks import ConvNormAct, DoubleConv
from gcl_engine.models.heads import ImageProjectionHead, PixelProjectionHead
from gcl_engine.models.unet2d import UNet2D, UNetDecoder, UNetEncoder

__all__ = [
    "ConvNormAct",
    "DoubleConv",
    "GCLPretrainNet",
    "ImageProjectionHead",
    "PixelProjectionHead",
    "UNet2D",
    "UNetDecoder",
    "UNetEncoder",
    "build_unet",
]


def build_unet(cfg: ModelConfig, num_classes: int) -> UNet2D:
    """The segmentation network of fine-tuning and inference, after validating ``cfg``."""
    cfg.validate()
    return UNet2D(cfg, num_classes)


class GCLPretrainNet(nn.Module):
    """Shared encoder + image head + pixel head, both heads on the bottleneck map.

    ``encoder`` is a UNetEncoder, so its state_dict loads into ``UNet2D(cfg, n).encoder`` unchanged.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.encoder = UNetEncoder(cfg)
        channels = cfg.encoder_channels
        self.image_head = ImageProjectionHead(channels, cfg.image_proj_hidden, cfg.image_proj_dim)
        self.pixel_head = PixelProjectionHead(channels, cfg.pixel_proj_hidden, cfg.pixel_proj_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B,C_in,H,W) -> (bottleneck F (B,C,h,w), image z (B,D_img), pixel q (B,D_pix,h,w))."""
        features = self.encoder(x)[-1]
        return features, self.image_head(features), self.pixel_head(features)
