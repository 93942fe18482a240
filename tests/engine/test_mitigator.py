"""Gradient Mitigator: PCGrad against a loop reference, its guarantees, the fast per-sample variant,
and the single-linear-layer coincidence of the exact and fast variants."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gcl_engine.training.mitigator import (
    assign_flat_gradient,
    exact_parameter_gradients,
    mitigate_per_sample,
    pcgrad,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def order_for(seed: int, m: int) -> list[int]:
    """The documented order: one randperm(M) drawn from the generator per call."""
    return torch.randperm(m, generator=gen(seed)).tolist()


def reference_pcgrad(g: torch.Tensor, order: list[int]) -> tuple[torch.Tensor, dict[int, list[int]]]:
    """PCGrad with plain loops over (M,P) float64 rows; also returns, per m, whom it was projected against."""
    raw = [row.clone() for row in g]
    out, projected = [], {}
    for m in range(len(raw)):
        v = raw[m].clone()
        projected[m] = []
        for o in order:
            if o == m:
                continue
            dot = float(v @ raw[o])
            if dot < 0 and float(raw[o] @ raw[o]) > 0:
                v = v - dot / float(raw[o] @ raw[o]) * raw[o]
                projected[m].append(o)
        out.append(v)
    return torch.stack(out), projected


@pytest.mark.parametrize("m", [2, 3, 4, 5])
def test_pcgrad_matches_reference_and_last_projection_is_nonnegative(m: int) -> None:
    for seed in range(40):
        g = torch.randn(m, 7, generator=gen(1000 + seed), dtype=torch.float64)
        got, stats = pcgrad(g, gen(seed))
        each, projected = reference_pcgrad(g, order_for(seed, m))
        torch.testing.assert_close(got, each.sum(0))
        for i, others in projected.items():
            if others:  # the last projection always leaves a non-negative dot
                assert float(each[i] @ g[others[-1]]) >= -1e-10
            if m == 2:  # with two labels that is every projection
                assert all(float(each[i] @ g[o]) >= -1e-10 for o in others)
        dots = g @ g.T
        pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
        assert stats.conflict_rate == pytest.approx(sum(float(dots[i, j] < 0) for i, j in pairs) / len(pairs))


def test_all_projections_nonnegative_when_the_others_agree() -> None:
    """If the gradients g_m is projected against do not conflict with each other, g_m ends non-negative
    against every one of them."""
    for seed in range(30):
        base = torch.rand(4, 6, generator=gen(seed), dtype=torch.float64)  # mutually non-conflicting
        g = torch.cat([-base[:1] - torch.rand(1, 6, generator=gen(99 + seed), dtype=torch.float64), base[1:]])
        each, projected = reference_pcgrad(g, order_for(seed, 4))
        torch.testing.assert_close(pcgrad(g, gen(seed))[0], each.sum(0))
        assert all(float(each[0] @ g[o]) >= -1e-10 for o in projected[0]) and projected[0]


def test_earlier_projection_can_be_undone_by_a_later_one() -> None:
    """Why the guarantee is only for the last projection: a, b conflict, and g conflicts with both."""
    g = torch.tensor([[-1.0, -1.0], [1.0, 0.0], [-0.6, 1.0]], dtype=torch.float64)
    seed = next(s for s in range(100) if [o for o in order_for(s, 3) if o] == [1, 2])
    each, projected = reference_pcgrad(g, order_for(seed, 3))
    assert projected[0] == [1, 2] and float(each[0] @ g[1]) < 0
    torch.testing.assert_close(pcgrad(g, gen(seed))[0], each.sum(0))


def test_no_conflict_is_plain_sum() -> None:
    g = torch.rand(4, 9, generator=gen(3))
    total, stats = pcgrad(g, gen(0))
    torch.testing.assert_close(total, g.sum(0))
    assert stats.conflict_rate == 0.0
    assert stats.cosines.shape == (4, 4)
    torch.testing.assert_close(stats.cosines.diagonal(), torch.ones(4))


def test_zero_gradient_is_guarded() -> None:
    g = torch.tensor([[1.0, -2.0], [0.0, 0.0], [-1.0, 0.5]])
    total, stats = pcgrad(g, gen(0))
    assert torch.isfinite(total).all() and torch.isfinite(stats.cosines).all()


@pytest.mark.parametrize("m", [2, 3, 5])
def test_per_sample_equals_pcgrad_per_sample(m: int) -> None:
    grads = torch.randn(m, 6, 3, 2, 2, generator=gen(m), dtype=torch.float64)  # (M,B,C,h,w)
    out, stats = mitigate_per_sample(grads, gen(17))
    assert out.shape == (6, 3, 2, 2)
    rates, cosines = [], []
    for b in range(6):
        one, s = pcgrad(grads[:, b].reshape(m, -1), gen(17))
        torch.testing.assert_close(out[b].reshape(-1), one)
        rates.append(s.conflict_rate)
        cosines.append(s.cosines)
    assert stats.conflict_rate == pytest.approx(sum(rates) / 6)
    torch.testing.assert_close(stats.cosines, torch.stack(cosines).mean(0))


def _linear_losses(y: torch.Tensor, targets: torch.Tensor) -> list[torch.Tensor]:
    """Three conflicting meta-label losses of the output y (B,4)."""
    return [((y - t) ** 2).sum() * 0.5 for t in targets]


def test_exact_and_fast_coincide_for_one_sample_through_a_linear_layer() -> None:
    """y = W x (no bias), batch of one. dL_m/dW = g_m x^T with g_m = dL_m/dy, so
    <dL_a/dW, dL_b/dW>_F = (g_a . g_b) ||x||^2 and ||dL_b/dW||^2 = ||g_b||^2 ||x||^2: every sign test and
    projection coefficient of PCGrad is the same in W-space and in y-space, hence
    exact surgery(dL_m/dW) = surgery(g_m) x^T = the fast update back-propagated through W."""
    for seed in range(10):
        torch.manual_seed(seed)
        layer = nn.Linear(5, 4, bias=False).double()
        x = torch.randn(1, 5, dtype=torch.float64)
        targets = torch.randn(3, 1, 4, dtype=torch.float64) * 3
        y = layer(x)
        losses = _linear_losses(y, targets)
        exact, stats = pcgrad(exact_parameter_gradients(losses, [layer.weight]), gen(seed))
        feat = torch.stack([torch.autograd.grad(loss, y, retain_graph=True)[0] for loss in losses])  # (M,1,4)
        fast_gy, _ = mitigate_per_sample(feat, gen(seed))  # (1,4)
        layer.weight.grad = None
        y.backward(fast_gy)
        torch.testing.assert_close(layer.weight.grad.reshape(-1), exact)
        if seed == 0:
            assert stats.conflict_rate > 0  # the surgery actually did something


def test_exact_and_fast_differ_for_two_samples() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(5, 4, bias=False).double()
    x = torch.randn(2, 5, dtype=torch.float64)
    targets = torch.randn(3, 2, 4, dtype=torch.float64) * 3
    y = layer(x)
    losses = _linear_losses(y, targets)
    exact, _ = pcgrad(exact_parameter_gradients(losses, [layer.weight]), gen(0))
    feat = torch.stack([torch.autograd.grad(loss, y, retain_graph=True)[0] for loss in losses])
    fast_gy, _ = mitigate_per_sample(feat, gen(0))
    y.backward(fast_gy)
    assert not torch.allclose(layer.weight.grad.reshape(-1), exact, atol=1e-6)


def test_exact_parameter_gradients_and_assign() -> None:
    a = nn.Parameter(torch.randn(2, 3))
    b = nn.Parameter(torch.randn(4))
    unused = nn.Parameter(torch.randn(2))
    losses = [(a**2).sum(), (a.sum() * b).sum()]
    grads = exact_parameter_gradients(losses, [a, b, unused])
    assert grads.shape == (2, 6 + 4 + 2)
    torch.testing.assert_close(grads[0], torch.cat([2 * a.detach().reshape(-1), torch.zeros(6)]))
    torch.testing.assert_close(grads[1, :6], b.detach().sum().expand(6))
    torch.testing.assert_close(grads[1, 6:10], a.detach().sum().expand(4))
    assert torch.all(grads[:, 10:] == 0)
    b.grad = torch.ones(4)
    assign_flat_gradient([a, b, unused], grads[1])
    torch.testing.assert_close(a.grad.reshape(-1), grads[1, :6])
    torch.testing.assert_close(b.grad, 1 + grads[1, 6:10])
    with pytest.raises(ValueError):
        assign_flat_gradient([a], grads[1])
