"""Networks: the 2D U-Net (encoder + decoder), the GCL projection heads, and the pre-training net."""

from __future__ import annotations

from torch import Tensor, nn

from gcl_engine.config import ModelConfig
from gcl_engine.models.blocks import ConvNormAct, DoubleConv
from gcl_engine.models.heads import ImageProjectionHead, PixelProjectionHead
from gcl_engine.models.unet2d import DecoderTrunk, UNet2D, UNetDecoder, UNetEncoder, level_channels

__all__ = [
    "ConvNormAct",
    "DecoderTrunk",
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
    """Shared encoder + image head on the bottleneck + pixel head on the map of resolution level ``pixel_level``.

    ``pixel_level`` -1 is the bottleneck (GCL_SPEC.md's default), -2 the level above at twice its resolution,
    and so on. ``pixel_features`` says whose map the pixel head reads there: the encoder's, or, with
    "decoder" (the spec's option to pre-train the decoder too), the output of the decoder's first
    up-blocks (``decoder``, a :class:`DecoderTrunk`). ``encoder`` and ``decoder`` keep the state_dict keys
    of ``UNet2D(cfg, n).encoder`` / ``.decoder``, so fine-tuning loads them unchanged.
    """

    def __init__(self, cfg: ModelConfig, pixel_level: int = -1, pixel_features: str = "encoder") -> None:
        super().__init__()
        cfg.validate()
        self.encoder = UNetEncoder(cfg)
        self.pixel_level = pixel_level
        self.decoder = DecoderTrunk(cfg, -1 - pixel_level) if pixel_features == "decoder" else None
        self.image_head = ImageProjectionHead(cfg.encoder_channels, cfg.image_proj_hidden, cfg.image_proj_dim)
        self.pixel_head = PixelProjectionHead(level_channels(cfg)[pixel_level], cfg.pixel_proj_hidden,
                                              cfg.pixel_proj_dim)

    @property
    def pixel_reads_bottleneck(self) -> bool:
        """The pixel head reads the image head's map (the default): nothing more to compute or gather."""
        return self.decoder is None and self.pixel_level == -1

    def pixel_map(self, maps: list[Tensor]) -> Tensor:
        """The map the pixel head reads, from the encoder's maps."""
        return self.decoder(maps) if self.decoder is not None else maps[self.pixel_level]

    def shared_parameters(self) -> list[nn.Parameter]:
        """What the meta labels' gradients meet in: the encoder (and the decoder trunk, when pre-trained)."""
        params = list(self.encoder.parameters())
        return params + (list(self.decoder.parameters()) if self.decoder is not None else [])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B,C_in,H,W) -> (bottleneck F (B,C,h,w), image z (B,D_img), pixel q (B,D_pix,h',w'))."""
        maps = self.encoder(x)
        return maps[-1], self.image_head(maps[-1]), self.pixel_head(self.pixel_map(maps))
