"""PreprocessConfig.field_of_view_mm: slices resampled at one physical pixel size, centred on the canvas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gcl_engine.config import PreprocessConfig
from gcl_engine.data.orientation import InPlaneOrientation
from gcl_engine.data.preprocessing import prepare_label_slices, prepare_volume_slices, slice_layout
from gcl_engine.data.slice_layout import make_layout

IDENTITY = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)


def _disk(n: int, mm: float, radius_mm: float = 20.0) -> np.ndarray:
    """(2, n, n) volume of label 1 inside a centred disk, at ``mm`` per pixel."""
    c = (np.arange(n) - (n - 1) / 2) * mm
    inside = (c[:, None] ** 2 + c[None, :] ** 2) < radius_mm ** 2
    return np.stack([inside, inside]).astype(np.int64)


def _area(labels: torch.Tensor) -> int:
    return int((labels[0] == 1).sum())


def test_the_same_organ_has_the_same_pixel_size_whatever_the_scans_field_of_view():
    small, large = _disk(100, 1.0), _disk(150, 1.0)  # 100 mm and 150 mm across, same 20 mm disk
    fit = PreprocessConfig(size=64)
    assert _area(prepare_label_slices(small, fit)) > 1.8 * _area(prepare_label_slices(large, fit))  # ~(150/100)^2
    fov = PreprocessConfig(size=64, field_of_view_mm=128.0)  # 2 mm per pixel: a disk of radius 10 px
    a = _area(prepare_label_slices(small, fov, IDENTITY, (1.0, 1.0, 3.0)))
    b = _area(prepare_label_slices(large, fov, IDENTITY, (1.0, 1.0, 3.0)))
    assert abs(a - b) <= 0.05 * a and abs(a - np.pi * 10 ** 2) < 0.1 * a


def test_anisotropic_pixels_are_made_square():
    # 200 x 50 pixels of 0.5 x 2 mm: a 100 mm square; at 2 mm per pixel it is 50 x 50 on the canvas
    layout = make_layout(InPlaneOrientation(), (200, 50), 64, (0.5, 2.0), 128.0)
    assert layout.canvas.scaled == (50, 50) and layout.canvas.offset == (7, 7)


def test_a_field_of_view_larger_than_the_scan_pads_with_its_air():
    image = np.full((2, 40, 40), 100.0, np.float32)
    image[:, 0] = -1000.0  # one row of air: the volume's lowest value
    padded = prepare_volume_slices(image, "CT", PreprocessConfig(size=32, field_of_view_mm=80.0), IDENTITY,
                                   (1.0, 1.0, 1.0))  # 40 mm of scan on 80 mm of canvas: the middle half
    assert padded.shape == (2, 32, 32)
    assert torch.all(padded[:, :8] == -1.0) and torch.all(padded[:, :, :8] == -1.0)  # CT air after the window
    assert torch.allclose(padded[:, 12:20, 12:20], torch.tensor((100.0 + 250.0) / 600.0 * 2 - 1))


@pytest.mark.parametrize(("n", "fov"), [(40, 80.0), (40, 20.0), (37, 50.0)])
def test_probabilities_go_back_to_the_stored_grid(n, fov):
    labels = _disk(n, 1.0, radius_mm=8.0)
    cfg = PreprocessConfig(size=32, field_of_view_mm=fov)
    layout = slice_layout(cfg, labels.shape, IDENTITY, (1.0, 1.0, 1.0))
    on_canvas = prepare_label_slices(labels, cfg, IDENTITY, (1.0, 1.0, 1.0))
    one_hot = F.one_hot(on_canvas, 2).permute(0, 3, 1, 2).float()
    back = layout.to_source(one_hot).argmax(1).numpy()
    assert back.shape == labels.shape
    seen = np.zeros_like(labels, bool)  # the part of the scan the canvas holds
    half = min(fov, n) / 2
    c = np.abs(np.arange(n) - (n - 1) / 2)
    seen[:, (c[:, None] < half - 1) & (c[None, :] < half - 1)] = True
    inter = ((back == 1) & (labels == 1) & seen).sum()
    assert 2 * inter / ((back == 1).sum() + (labels == 1)[seen].sum()) > 0.85
    assert not back[~seen & (labels == 0)].any()  # outside what the canvas holds: background


def test_slices_resampled_in_groups_give_the_same_stack():
    rng = np.random.default_rng(0)
    stack = rng.normal(size=(7, 30, 26)).astype(np.float32)
    layout = make_layout(InPlaneOrientation(True, True, False), (30, 26), 32, (0.5, 0.7), 8.0)  # zoomed in
    whole = layout.to_network(stack, fill=-1.0)
    assert torch.equal(layout.to_network(stack, fill=-1.0, max_values=1), whole)  # one slice at a time
    assert torch.equal(layout.to_network(stack, fill=-1.0, max_values=3 * 64 * 64), whole)
