"""A slice whose meta label is unknown (e.g. no phase in its header) makes no positives under that label.

Before, unknown values were positives of their own volume's slices, which on a pool without phases made
``phase`` a copy of ``subject`` (benchmarks/README.md, few-shot diagnostics); ``unknown_values='volume'``
keeps that behaviour.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from gcl_engine.config import ModelConfig, PretrainConfig
from gcl_engine.data.meta_labels import UNKNOWN_BASE
from gcl_engine.models import GCLPretrainNet
from gcl_engine.training.distributed import DistContext
from gcl_engine.training.gcl_step import StepInputs, gcl_step, loss_labels
from gcl_engine.training.methods import MethodPlan


def test_loss_labels_turn_unknown_codes_into_minus_one():
    labels = {"phase": torch.tensor([3, UNKNOWN_BASE, UNKNOWN_BASE + 2, 0]), "subject": torch.tensor([0, 1, 1, 2])}
    out = loss_labels(labels, PretrainConfig(folder="x"))
    assert out["phase"].tolist() == [3, -1, -1, 0]
    assert out["subject"].tolist() == [0, 1, 1, 2]
    kept = loss_labels(labels, PretrainConfig(folder="x", unknown_values="volume"))
    assert kept["phase"].tolist() == labels["phase"].tolist()


def _step(unknown_values: str) -> dict[str, float]:
    torch.manual_seed(0)
    net = GCLPretrainNet(ModelConfig(base_channels=8, levels=3))
    n = 4
    views = torch.randn(2 * n, 1, 32, 32)
    theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2 * n, 2, 3).clone()
    labels = {"subject": torch.tensor([0, 0, 1, 1]),
              "phase": torch.tensor([UNKNOWN_BASE, UNKNOWN_BASE, UNKNOWN_BASE + 1, UNKNOWN_BASE + 1])}
    cfg = PretrainConfig(folder="x", unknown_values=unknown_values, gradient_filter="none")
    plan = MethodPlan("gcl", ("subject", "phase"), pixel=True, mitigate=True, gradient_filter="none")
    out = gcl_step(net, net.encoder, StepInputs(views, theta, labels), cfg, plan, DistContext(),
                   torch.Generator().manual_seed(0), contextlib.nullcontext)
    return out.metrics


def test_a_label_unknown_everywhere_adds_no_loss_when_ignored():
    ignored = _step("ignore")
    assert ignored["img/loss/phase"] == 0 and ignored["pix/loss/phase"] == 0
    assert ignored["img/loss/subject"] > 0 and ignored["pix/loss/subject"] > 0


def test_the_old_behaviour_makes_unknown_phase_a_copy_of_subject():
    old = _step("volume")
    assert old["img/loss/phase"] == pytest.approx(old["img/loss/subject"], rel=1e-6)
    assert old["pix/loss/phase"] > 0
