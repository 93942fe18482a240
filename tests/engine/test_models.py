"""U-Net shapes, GroupNorm-only normalisation, unit-norm heads, encoder weight transfer."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from gcl_engine.config import ModelConfig
from gcl_engine.models import (
    GCLPretrainNet,
    ImageProjectionHead,
    PixelProjectionHead,
    UNet2D,
    build_unet,
)

SHAPES = [  # (levels, base, size, in_channels, classes)
    (2, 4, 16, 1, 2),
    (3, 8, 32, 1, 3),
    (4, 8, 24, 2, 4),
    (5, 4, 48, 1, 2),
    (5, 6, 32, 1, 5),
]


@pytest.mark.parametrize(("levels", "base", "size", "in_ch", "classes"), SHAPES)
def test_unet_shapes(levels: int, base: int, size: int, in_ch: int, classes: int) -> None:
    cfg = ModelConfig(in_channels=in_ch, base_channels=base, levels=levels)
    net = build_unet(cfg, classes).eval()
    x = torch.randn(2, in_ch, size, size + 2 ** (levels - 1))
    features = net.encoder(x)
    assert len(features) == levels
    for level, f in enumerate(features):
        assert f.shape == (2, base * 2**level, x.shape[2] // 2**level, x.shape[3] // 2**level)
    assert features[-1].shape[1] == cfg.encoder_channels
    assert net(x).shape == (2, classes, x.shape[2], x.shape[3])


def test_unet_uses_groupnorm_only() -> None:
    cfg = ModelConfig(base_channels=6, levels=4, groups=8)
    net = UNet2D(cfg, 3)
    norms = [m for m in net.modules() if isinstance(m, nn.GroupNorm)]
    assert norms, "the U-Net must normalise with GroupNorm"
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    for norm in norms:  # min(groups, channels), reduced to a divisor
        assert norm.num_channels % norm.num_groups == 0
        assert norm.num_groups <= min(cfg.groups, norm.num_channels)
    assert any(n.num_groups == 8 for n in norms)


def test_heads_unit_norm() -> None:
    torch.manual_seed(0)
    f = torch.randn(4, 32, 3, 5)
    z = ImageProjectionHead(32, hidden=16, out=8)(f)
    q = PixelProjectionHead(32, hidden=16, out=6)(f)
    assert z.shape == (4, 8) and q.shape == (4, 6, 3, 5)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(q.norm(dim=1), torch.ones(4, 3, 5))


def test_pretrain_net_encoder_loads_into_unet() -> None:
    cfg = ModelConfig(base_channels=4, levels=3, image_proj_hidden=16, image_proj_dim=8,
                      pixel_proj_hidden=12, pixel_proj_dim=6)
    pre = GCLPretrainNet(cfg)
    features, z, q = pre(torch.randn(3, 1, 16, 16))
    assert features.shape == (3, cfg.encoder_channels, 4, 4)
    assert z.shape == (3, 8) and q.shape == (3, 6, 4, 4)
    with torch.no_grad():
        for p in pre.encoder.parameters():
            p.normal_()
    net = UNet2D(cfg, 2)
    net.encoder.load_state_dict(pre.encoder.state_dict(), strict=True)
    for a, b in zip(pre.encoder.state_dict().values(), net.encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_unet_exports_to_onnx_with_dynamic_size() -> None:
    """Exported at 16x16, the ONNX graph must match eager at another batch and size: no data-dependent
    Python control flow was frozen into it."""
    ort = pytest.importorskip("onnxruntime")
    net = UNet2D(ModelConfig(base_channels=4, levels=3), 2).eval()
    buf = io.BytesIO()
    torch.onnx.export(net, (torch.randn(1, 1, 16, 16),), buf, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}}, dynamo=False)
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 1, 32, 24)
    got = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    with torch.no_grad():
        torch.testing.assert_close(got, net(x), atol=1e-4, rtol=1e-4)
