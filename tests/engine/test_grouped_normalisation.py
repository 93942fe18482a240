"""Slices normalised a group at a time (prepare_volume_slices) equal the whole volume normalised at once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gcl_engine.config import PreprocessConfig
from gcl_engine.data.preprocessing import normalise_intensity, prepare_volume_slices, slice_layout, slices_along


@pytest.mark.parametrize("modality", ["CT", "MR"])
@pytest.mark.parametrize("fov", [None, 200.0])
@pytest.mark.parametrize("axis", [0, 2])
def test_grouped_normalisation_gives_the_whole_volume_values(modality, fov, axis):
    rng = np.random.default_rng(1)
    array = rng.integers(-1500, 2500, size=(12, 30, 26)).astype(np.int16)
    cfg = dataclasses.replace(PreprocessConfig(size=16, axis=axis), field_of_view_mm=fov)
    spacing, direction = (0.8, 0.9, 2.0), (1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0)
    whole = normalise_intensity(array, modality, cfg)
    layout = slice_layout(cfg, array.shape, direction, spacing)
    want = layout.to_network(slices_along(whole, axis), fill=float(whole.min()))
    got = layout.to_network(slices_along(array, axis), fill=float(whole.min()), max_values=600,
                            transform=lambda part: normalise_intensity(part, "CT", cfg)) if modality == "CT" else None
    assert np.array_equal(prepare_volume_slices(array, modality, cfg, direction, spacing).numpy(), want.numpy())
    if got is not None:  # groups of 1-2 slices
        assert np.array_equal(got.numpy(), want.numpy())
