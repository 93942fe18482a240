"""Painting aids of the engine: which slices are painted (whole slices or scribbles with an unknown value),
interpolation between painted slices, a loss that never sees unknown pixels, slice suggestions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gcl_engine import api
from gcl_engine.data.interpolation import interpolate_between
from gcl_engine.data.painted import check_unknown_value, painted_slices
from gcl_engine.errors import ConfigError, InputError
from gcl_engine.inference.suggest import distances_to_painted, rank
from gcl_engine.losses import IGNORE_INDEX, segmentation_loss

U = api.UNKNOWN_LABEL


def ball_volume(shape=(30, 48, 48)) -> np.ndarray:
    """A ball (class 1) and an ellipsoid elongated along the slicing axis (class 2)."""
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    out = np.zeros(shape, np.uint8)
    out[(z - 15) ** 2 + (y - 22) ** 2 + (x - 18) ** 2 < 11 ** 2] = 1
    out[(z - 15) ** 2 / 9 + (y - 24) ** 2 + (x - 38) ** 2 < 5 ** 2] = 2
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


# --- which slices are painted -------------------------------------------------------------------------

def test_whole_slice_convention_counts_slices_holding_a_label():
    stack = np.zeros((6, 4, 4), np.uint8)
    stack[1, 0, 0] = 1
    stack[4] = 2
    assert painted_slices(stack) == [1, 4]
    assert painted_slices(stack, explicit=[5, 1, 1]) == [1, 5]  # a background-only slice, when listed
    with pytest.raises(InputError, match="outside 0..5"):
        painted_slices(stack, explicit=[6])


def test_scribble_convention_counts_background_painted_on_purpose():
    stack = np.full((5, 4, 4), U, np.uint8)
    stack[0, 1, 1] = 0  # a slice where the user painted only background: it says "no organ here"
    stack[3, 2, 2] = 1
    assert painted_slices(stack, unknown_value=U) == [0, 3]
    assert painted_slices(stack) == [0, 1, 2, 3, 4]  # read with the wrong convention every voxel is a label


def test_unknown_value_may_not_be_a_class():
    check_unknown_value(U, 13)
    with pytest.raises(InputError, match="also class 3"):
        check_unknown_value(3, 5)


# --- interpolation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["sdf", "mci"])
def test_interpolation_recovers_smooth_shapes_between_painted_slices(method):
    ref = ball_volume()
    painted = [6, 11, 15, 19, 24]
    out = interpolate_between(ref, painted, method)
    held = [k for k in range(7, 24) if k not in painted]
    for c in (1, 2):
        assert dice(out[held] == c, ref[held] == c) > 0.85, (method, c)
    assert np.array_equal(out[painted], ref[painted])  # what was painted stays as painted
    assert not out[:6].any() and not out[25:].any()  # never extrapolated beyond the painted range


def test_sdf_interpolation_keeps_a_class_absent_where_a_painted_slice_says_so():
    stack = np.zeros((9, 20, 20), np.uint8)
    stack[0, 5:15, 5:15] = 1
    stack[8, 5:15, 5:15] = 1
    stack[4, 1, 1] = 2  # painted, without class 1: the user says it is not on slice 4
    out = interpolate_between(stack, [0, 4, 8])
    assert not (out[4] == 1).any()
    assert (out[1] == 1).sum() > 0 and not (out[3] == 1).any()  # fades out by the middle of the gap


def test_sdf_interpolation_uses_physical_pixel_size():
    stack = np.zeros((3, 40, 40), np.uint8)
    stack[0, 10:30, 18:22] = 1  # a thin vertical bar on one side of the gap
    stack[2, 18:22, 10:30] = 1  # a thin horizontal bar on the other
    square = interpolate_between(stack, [0, 2], pixel_mm=(1.0, 1.0))[1]
    wide = interpolate_between(stack, [0, 2], pixel_mm=(1.0, 4.0))[1]
    assert not np.array_equal(square, wide)


def test_unknown_voxels_become_background_and_never_leak_into_the_output():
    stack = np.full((5, 10, 10), U, np.uint8)
    stack[0, 2:6, 2:6] = 1
    stack[0, 8, 8] = 0
    stack[4, 3:7, 3:7] = 1
    out = interpolate_between(stack, painted_slices(stack, U), unknown_value=U)
    assert U not in out and (out[2] == 1).any()


def test_interpolation_method_is_checked():
    with pytest.raises(ConfigError, match="method"):
        interpolate_between(np.zeros((3, 4, 4), np.uint8), [0, 2], method="linear")  # type: ignore[arg-type]


# --- the loss never sees unknown pixels ------------------------------------------------------------------

def test_loss_with_unknown_pixels_equals_the_loss_of_the_known_pixels_alone():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    target[0, :4] = IGNORE_INDEX
    target[1, :, 5:] = IGNORE_INDEX
    known = target != IGNORE_INDEX
    # the reference: the known pixels only, laid out as one row of a (1, K, 1, N) image
    ref_logits = logits.permute(1, 0, 2, 3)[:, known].reshape(1, 3, 1, -1)
    ref_target = target[known].reshape(1, 1, -1)
    weights = torch.tensor([0.5, 1.0, 2.0])
    got = segmentation_loss(logits, target, weights)
    want = segmentation_loss(ref_logits, ref_target, weights)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_loss_of_a_batch_without_known_pixels_is_zero_and_steps():
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    loss = segmentation_loss(logits, torch.full((1, 4, 4), IGNORE_INDEX))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None


def test_loss_without_unknown_pixels_is_unchanged():
    """The masked Dice equals MONAI's plain soft Dice when every pixel is known (old behaviour)."""
    from monai.losses import DiceLoss

    torch.manual_seed(1)
    logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    plain = DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)(logits, target[:, None])
    plain = plain + F.cross_entropy(logits, target)
    torch.testing.assert_close(segmentation_loss(logits, target), plain, rtol=1e-5, atol=1e-6)


# --- suggestions ---------------------------------------------------------------------------------------

def test_ranking_excludes_painted_slices_and_weighs_uncertainty_by_distance():
    uncertainty = np.array([0.9, 0.9, 0.2, 0.2, 0.2, 0.5, 0.5, 0.2, 0.2, 0.2])
    order = rank(uncertainty, painted=[0], strategy="uncertainty_distance")
    assert 0 not in [s.slice for s in order]
    assert order[0].slice in (5, 6)  # slice 1 is most uncertain but next to a painted slice
    assert rank(uncertainty, [0], "uncertainty")[0].slice == 1
    assert rank(uncertainty, [0], "distance")[0].slice == 5  # the middle of the largest gap, ends count
    assert list(distances_to_painted(5, [1, 3])) == [1, 0, 1, 0, 1]
    with pytest.raises(ConfigError, match="unknown suggestion strategy"):
        rank(uncertainty, [0], "random")


def test_distance_ranking_spreads_painted_slices_over_the_structures_only():
    """Foreground on slices 10..29 of 40: the first suggestions halve the gaps inside that extent; slices with
    nothing on them come after every slice that has something."""
    n = 40
    foreground = np.zeros(n, bool)
    foreground[10:30] = True
    flat = np.zeros(n)
    painted = [20]
    for expected in (14, 25):
        best = rank(flat, painted, "distance", foreground)[0].slice
        assert abs(best - expected) <= 1, (best, expected)
        painted.append(best)
    order = [s.slice for s in rank(flat, painted, "default", foreground)]
    assert set(order[:17]) <= set(range(10, 30)) and order[-1] in (0, 39)
