"""The pixel head on a finer level of the encoder or of a pre-trained decoder trunk (GCL_SPEC.md's options):
shapes, validation, that the step's one-pass update equals plain autograd of the summed losses when nothing
is mitigated, and that fine-tuning starts from the pre-trained decoder blocks."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch

from gcl_engine.config import ModelConfig, PretrainConfig
from gcl_engine.errors import ConfigError
from gcl_engine.losses import supcon_loss
from gcl_engine.models import GCLPretrainNet, UNet2D
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
    with pytest.raises(ConfigError, match="decoder"):
        PretrainConfig(folder="x", model=MODEL, pixel_features="decoder").validate()  # -1: no decoder there


def test_the_decoder_trunk_reads_a_finer_map_and_its_weights_fit_the_segmentation_decoder():
    net = GCLPretrainNet(MODEL, pixel_level=-3, pixel_features="decoder")
    features, _, q = net(torch.randn(2, 1, 32, 32))
    assert features.shape[-2:] == (8, 8) and q.shape[-2:] == (32, 32)
    assert len(net.decoder.ups) == 2 and len(net.shared_parameters()) > len(list(net.encoder.parameters()))
    decoder = {k[len("decoder."):]: v for k, v in net.state_dict().items() if k.startswith("decoder.")}
    result = UNet2D(MODEL, 3).decoder.load_state_dict(decoder, strict=False)
    assert result.unexpected_keys == [] and all(k.startswith("head.") for k in result.missing_keys)


@pytest.mark.parametrize(("level", "features"), [(-1, "encoder"), (-2, "encoder"), (-2, "decoder")])
def test_the_unmitigated_step_is_autograd_of_the_summed_losses(level, features):
    cfg = PretrainConfig(folder="x", model=MODEL, pixel_level=level, pixel_features=features,
                         gradient_filter="none", lambda_pixel=0.7)
    plan = MethodPlan("naive_sum", ("subject", "position"), pixel=True, mitigate=False, gradient_filter="none")
    torch.manual_seed(1)
    net = GCLPretrainNet(MODEL, pixel_level=level, pixel_features=features)
    reference = copy.deepcopy(net)
    inputs = _inputs()
    gcl_step(net, net.encoder, inputs, cfg, plan, DistContext(), torch.Generator().manual_seed(0),
             contextlib.nullcontext)

    maps = reference.encoder(inputs.views)
    z = reference.image_head(maps[-1])
    image = sum(supcon_loss(z, y.repeat(2), cfg.temperature_image) for y in LABELS.values())
    pixel = sum(_pixel_losses(reference, reference.pixel_map(maps), None, LABELS, inputs, cfg, plan, {}).values())
    (image + cfg.lambda_pixel * pixel).backward()
    for (name, got), want in zip(net.named_parameters(), reference.parameters(), strict=True):
        assert got.grad is not None and want.grad is not None, name
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-4, atol=1e-4, msg=name)  # grads reach ~10


@pytest.mark.parametrize("mitigator", ["fast", "exact"])
@pytest.mark.parametrize("features", ["encoder", "decoder"])
def test_the_mitigated_step_on_a_finer_level_trains_every_shared_layer(mitigator, features):
    cfg = PretrainConfig(folder="x", model=MODEL, pixel_level=-2, pixel_features=features, mitigator=mitigator)
    plan = MethodPlan("gcl", ("subject", "position"), pixel=True, mitigate=True, gradient_filter="A")
    net = GCLPretrainNet(MODEL, pixel_level=-2, pixel_features=features)
    out = gcl_step(net, net.encoder, _inputs(), cfg, plan, DistContext(), torch.Generator().manual_seed(0),
                   contextlib.nullcontext)
    assert 0 < out.metrics["pixel/kept_share"] <= cfg.filter_ratio + 1e-6
    assert out.metrics["pix/loss/subject"] > 0
    shared = [(f"shared {i}", p) for i, p in enumerate(net.shared_parameters())]
    for name, p in shared:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert net.pixel_head.mlp[0].weight.grad.abs().sum() > 0


def test_fine_tuning_starts_from_the_pre_trained_decoder_blocks(tmp_path):
    from gcl_engine.checkpoint import load_checkpoint
    from gcl_engine.config import FinetuneConfig
    from gcl_engine.training.finetune import _initial_model, _start_state
    from gcl_engine.training.pretrain import pretrain
    from tests.engine.synthetic import TINY_MODEL, TINY_PRE, make_folder

    scans, _, _ = make_folder(tmp_path / "pool", n=3, with_labels=False)
    result = pretrain(PretrainConfig(folder=str(scans), out=str(tmp_path / "run"), steps=2, volumes_per_batch=2,
                                     device="cpu", threads=1, preprocess=TINY_PRE, model=TINY_MODEL,
                                     pixel_level=-2, pixel_features="decoder", cache=str(tmp_path / "cache")))
    cfg, state = _start_state(FinetuneConfig(image="x", labels="y", pretrained=result.checkpoint), None)
    model, _ = _initial_model(cfg, state, num_classes=3)
    saved = load_checkpoint(result.checkpoint)["model"]
    for key, value in model.decoder.state_dict().items():
        if key.startswith("ups.0."):
            torch.testing.assert_close(value, saved[f"decoder.{key}"], msg=key)
    assert not any(k.startswith("decoder.ups.1.") for k in saved)  # only the block the pixel head read
