"""supcon_loss against a slow loop reference; keep_pairs; closed-form pair gradient; SimCLR special case."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gcl_engine.losses import SupConLoss, pair_logit_gradient, supcon_from_logits, supcon_loss


def reference_supcon(z: torch.Tensor, labels: list[int], tau: float) -> float:
    """GCL_SPEC.md's formula with plain Python loops and math.exp."""
    n = len(labels)
    s = [[float(z[i] @ z[j]) / tau for j in range(n)] for i in range(n)]
    terms = []
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denom = sum(math.exp(s[i][a]) for a in range(n) if a != i)
        terms.append(-sum(math.log(math.exp(s[i][p]) / denom) for p in positives) / len(positives))
    return sum(terms) / len(terms) if terms else 0.0


def unit(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


CASES = [  # (labels, dim, temperature)
    ([0, 0, 1, 1], 3, 0.5),
    ([0, 1, 0, 1, 2, 2, 3], 8, 0.07),  # label 3 has no positive: excluded from the mean
    ([4] * 6, 5, 0.1),
    ([0, 1, 2, 0, 1, 2, 0, 1, 2, 5, 5, 5], 16, 0.2),
    (list(range(5)) * 2, 4, 1.0),
]


@pytest.mark.parametrize(("labels", "dim", "tau"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_loop_reference(labels: list[int], dim: int, tau: float, seed: int) -> None:
    z = unit(len(labels), dim, seed)
    got = supcon_loss(z, torch.tensor(labels), tau)
    assert got.item() == pytest.approx(reference_supcon(z, labels, tau), abs=1e-5)
    assert SupConLoss(tau)(z, torch.tensor(labels)).item() == pytest.approx(got.item(), abs=1e-12)


def test_no_positive_gives_connected_zero() -> None:
    z = unit(4, 3, 0).requires_grad_()
    loss = supcon_loss(z, torch.arange(4), 0.1)
    assert loss.item() == 0.0
    loss.backward()
    assert z.grad is not None and torch.all(z.grad == 0)


def test_stable_at_tiny_temperature() -> None:
    z = unit(8, 4, 3).float().requires_grad_()
    loss = supcon_loss(z, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), 1e-4)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_simclr_special_case() -> None:
    """Slice ids with two views each: SupCon equals NT-Xent (cross-entropy on the other view)."""
    n = 5
    z = unit(2 * n, 6, 7)
    tau = 0.3
    s = z @ z.T / tau
    s.fill_diagonal_(-1e9)
    other_view = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    ntxent = F.cross_entropy(s, other_view)
    got = supcon_loss(z, torch.cat([torch.arange(n), torch.arange(n)]), tau)
    torch.testing.assert_close(got, ntxent)


def test_pair_logit_gradient_equals_autograd() -> None:
    labels = torch.tensor([0, 1, 0, 1, 2, 2, 3])
    tau = 0.2
    z = unit(7, 5, 11)
    logits = (z @ z.T / tau).requires_grad_()
    supcon_from_logits(logits, labels).backward()
    expected = pair_logit_gradient(z, labels, tau)
    torch.testing.assert_close(expected, logits.grad)
    assert torch.all(expected.diagonal() == 0)
    assert torch.all(expected[6] == 0)  # label 3 has no positive: not an anchor


def test_keep_pairs_keeps_value_and_cuts_gradient() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    tau = 0.25
    z0 = unit(8, 6, 5)
    keep = torch.rand(8, 8, generator=torch.Generator().manual_seed(2)) < 0.4
    z = z0.clone().requires_grad_()
    loss = supcon_loss(z, labels, tau, keep_pairs=keep)
    assert loss.item() == pytest.approx(supcon_loss(z0, labels, tau).item(), abs=1e-12)
    loss.backward()
    # chain rule through kept pairs only: dL/dz_i = (1/tau) sum_j (G_ij K_ij + G_ji K_ji) z_j
    g = pair_logit_gradient(z0, labels, tau) * keep
    torch.testing.assert_close(z.grad, (g + g.T) @ z0 / tau)
    full = z0.clone().requires_grad_()
    supcon_loss(full, labels, tau).backward()
    assert not torch.allclose(full.grad, z.grad)
    # on the logits: dropped pairs get exactly zero gradient
    logits = (z0 @ z0.T / tau).requires_grad_()
    supcon_from_logits(torch.where(keep, logits, logits.detach()), labels).backward()
    assert torch.all(logits.grad[~keep] == 0)
    assert torch.any(logits.grad[keep] != 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unknown_labels_leave_the_loss(seed: int) -> None:
    """Label -1 = unknown: the loss equals the loss of the known samples alone, and unknown samples get no
    gradient (they are no anchor, no positive, no negative)."""
    labels = torch.tensor([0, -1, 0, 1, -1, 1, 2, -1, 2, 0])
    known = labels >= 0
    z = unit(10, 6, seed).requires_grad_()
    loss = supcon_loss(z, labels, 0.1)
    alone = supcon_loss(z.detach()[known], labels[known], 0.1)
    assert loss.item() == pytest.approx(alone.item(), abs=1e-9)
    assert loss.item() == pytest.approx(reference_supcon(z.detach()[known], labels[known].tolist(), 0.1), abs=1e-5)
    loss.backward()
    assert torch.all(z.grad[~known] == 0) and torch.any(z.grad[known] != 0)


def test_unknown_labels_only_gives_connected_zero() -> None:
    z = unit(4, 3, 0).requires_grad_()
    loss = supcon_loss(z, torch.tensor([-1, -1, -1, -1]), 0.1)
    loss.backward()
    assert loss.item() == 0 and torch.all(z.grad == 0)


def test_pair_logit_gradient_with_unknown_labels_equals_autograd() -> None:
    labels = torch.tensor([0, -1, 0, 1, 1, -1, 2])
    z = unit(7, 5, 3)
    logits = (z @ z.T / 0.2).requires_grad_()
    supcon_from_logits(logits, labels).backward()
    expected = pair_logit_gradient(z, labels, 0.2)
    torch.testing.assert_close(expected, logits.grad)
    assert torch.all(expected[:, 1] == 0) and torch.all(expected[1] == 0)
