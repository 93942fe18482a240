"""Gradient Filter: top-ratio locations (variant A) and top-k pairs (variant B) against sort references."""

from __future__ import annotations

import pytest
import torch

from gcl_engine.training.gradient_filter import feature_saliency, topk_location_mask, topk_pair_mask


def reference_locations(sal: torch.Tensor, ratio: float, valid: torch.Tensor) -> torch.Tensor:
    """Per slice: sort valid (value, index) pairs by value desc then index asc; keep the first k."""
    keep = torch.zeros_like(valid)
    for b in range(sal.shape[0]):
        values, ok = sal[b].reshape(-1).tolist(), valid[b].reshape(-1).tolist()
        cands = sorted((i for i in range(len(values)) if ok[i]), key=lambda i: (-values[i], i))
        k = min(len(cands), max(1, round(ratio * len(cands))))
        flat = keep[b].reshape(-1)
        for i in cands[:k]:
            flat[i] = True
    return keep


@pytest.mark.parametrize("ratio", [0.01, 0.25, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("with_valid", [False, True])
def test_location_mask_matches_sort_reference(ratio: float, with_valid: bool) -> None:
    g = torch.Generator().manual_seed(int(ratio * 100) + with_valid)
    sal = torch.randint(0, 6, (4, 5, 7), generator=g).float()  # many ties
    valid = torch.rand(4, 5, 7, generator=g) < 0.6 if with_valid else torch.ones(4, 5, 7, dtype=torch.bool)
    if with_valid:
        valid[3] = False  # a slice with no valid location keeps nothing
    got = topk_location_mask(sal, ratio, valid if with_valid else None)
    expected = reference_locations(sal, ratio, valid)
    assert torch.equal(got, expected)
    assert not torch.any(got & ~valid)
    for b in range(4):
        n = int(valid[b].sum())
        assert int(got[b].sum()) == (min(n, max(1, round(ratio * n))) if n else 0)


def test_location_mask_keeps_largest() -> None:
    sal = torch.arange(16.0).reshape(1, 4, 4)
    got = topk_location_mask(sal, 0.25)
    assert got.reshape(-1).nonzero().flatten().tolist() == [12, 13, 14, 15]


def test_feature_saliency_is_channel_norm() -> None:
    grad = torch.randn(2, 3, 4, 5, requires_grad=True)
    sal = feature_saliency(grad)
    assert sal.shape == (2, 4, 5) and not sal.requires_grad
    torch.testing.assert_close(sal, torch.sqrt((grad.detach() ** 2).sum(1)))


@pytest.mark.parametrize("k", [1, 3, 9, 20])
def test_pair_mask_keeps_k_largest_per_row(k: int) -> None:
    n = 10
    pair = torch.randn(n, n, generator=torch.Generator().manual_seed(k))
    pair[2, 5] = pair[2, 6] = 5.0  # a tie: the lower index wins
    keep = topk_pair_mask(pair, k)
    assert not keep.diagonal().any()
    for i in range(n):
        cands = sorted((j for j in range(n) if j != i), key=lambda j: (-abs(float(pair[i, j])), j))
        assert keep[i].nonzero().flatten().tolist() == sorted(cands[: min(k, n - 1)])


def test_pair_mask_always_keep_adds_positives() -> None:
    n = 6
    pair = torch.randn(n, n, generator=torch.Generator().manual_seed(0))
    forced = torch.zeros(n, n, dtype=torch.bool)
    forced[0, pair[0].abs().argmin()] = True
    forced[1, 1] = True  # the diagonal is never kept
    keep = topk_pair_mask(pair, 2, always_keep=forced)
    assert torch.equal(keep, topk_pair_mask(pair, 2) | (forced & ~torch.eye(n, dtype=torch.bool)))
    assert int(keep[0].sum()) == 3 and not keep[1, 1]
