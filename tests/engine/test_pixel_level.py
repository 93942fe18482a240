"""The pixel head on a finer encoder level (GCL_SPEC.md's option): shapes, validation, and that the step's
one-pass update equals plain autograd of the summed losses when nothing is mitigated."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch

from gcl_engine.config import ModelConfig, PretrainConfig
from gcl_engine.errors import ConfigError
from gcl_engine.losses import supcon_loss
from gcl_engine.models import GCLPretrainNet
from gcl_engine.training.distributed import DistContext
from gcl_engine.training.gcl_step import StepInputs, _pixel_losses, gcl_step
from gcl_engine.training.methods import MethodPlan

MODEL = ModelConfig(base_channels=8, levels=3)
LABELS = {"subject": torch.tensor([0, 0, 1, 1]), "position": torch.tensor([0, 1, 0, 1])}


def _inputs() -> StepInputs:
    torch.manual_seed(0)
    views = torch.randn(8, 1, 32, 32)
    theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(8, 2, 3).clone()
    theta[4:, 0, 2] = 0.1  # the second views are shifted: the pixel branch must undo it
    return StepInputs(views, theta, LABELS)


def test_the_pixel_head_reads_the_chosen_level():
    net = GCLPretrainNet(MODEL, pixel_level=-2)
    features, z, q = net(torch.randn(2, 1, 32, 32))
    assert features.shape == (2, 32, 8, 8) and z.shape[0] == 2
    assert q.shape[-2:] == (16, 16)  # twice the bottleneck's resolution
    assert PretrainConfig(folder="x", model=MODEL, pixel_level=-3).pixel_level == -3
    for bad in (0, -4):
        with pytest.raises(ConfigError, match="pixel_level"):
            PretrainConfig(folder="x", model=MODEL, pixel_level=bad).validate()


@pytest.mark.parametrize("level", [-1, -2])
def test_the_unmitigated_step_is_autograd_of_the_summed_losses(level):
    cfg = PretrainConfig(folder="x", model=MODEL, pixel_level=level, gradient_filter="none", lambda_pixel=0.7)
    plan = MethodPlan("naive_sum", ("subject", "position"), pixel=True, mitigate=False, gradient_filter="none")
    torch.manual_seed(1)
    net = GCLPretrainNet(MODEL, pixel_level=level)
    reference = copy.deepcopy(net)
    inputs = _inputs()
    gcl_step(net, net.encoder, inputs, cfg, plan, DistContext(), torch.Generator().manual_seed(0),
             contextlib.nullcontext)

    maps = reference.encoder(inputs.views)
    z = reference.image_head(maps[-1])
    image = sum(supcon_loss(z, y.repeat(2), cfg.temperature_image) for y in LABELS.values())
    pixel = sum(_pixel_losses(reference, maps[level], None, LABELS, inputs, cfg, plan, {}).values())
    (image + cfg.lambda_pixel * pixel).backward()
    for (name, got), want in zip(net.named_parameters(), reference.parameters(), strict=True):
        assert got.grad is not None and want.grad is not None, name
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-4, atol=1e-4, msg=name)  # grads reach ~10


@pytest.mark.parametrize("mitigator", ["fast", "exact"])
def test_the_mitigated_step_on_a_finer_level_trains_every_encoder_level(mitigator):
    cfg = PretrainConfig(folder="x", model=MODEL, pixel_level=-2, mitigator=mitigator)
    plan = MethodPlan("gcl", ("subject", "position"), pixel=True, mitigate=True, gradient_filter="A")
    net = GCLPretrainNet(MODEL, pixel_level=-2)
    out = gcl_step(net, net.encoder, _inputs(), cfg, plan, DistContext(), torch.Generator().manual_seed(0),
                   contextlib.nullcontext)
    assert 0 < out.metrics["pixel/kept_share"] <= cfg.filter_ratio + 1e-6
    assert out.metrics["pix/loss/subject"] > 0
    for name, p in net.encoder.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert net.pixel_head.mlp[0].weight.grad.abs().sum() > 0
