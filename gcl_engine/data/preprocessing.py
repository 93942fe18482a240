"""Intensity normalisation per modality, in-plane orientation and resampling to the network's fixed size.

One code path for pre-training, fine-tuning and inference, so a model always sees what it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from gcl_engine.config import PreprocessConfig
from gcl_engine.data.orientation import InPlaneOrientation, in_plane_orientation
from gcl_engine.data.slice_layout import SliceLayout, make_layout


def normalise_intensity(array: np.ndarray, modality: str, cfg: PreprocessConfig) -> np.ndarray:
    """CT: clip to the window and scale to [-1, 1]; otherwise percentile clip and z-score per volume."""
    return intensity_map(array, modality, cfg)(array)


def intensity_map(array: np.ndarray, modality: str, cfg: PreprocessConfig) -> Callable[[np.ndarray], np.ndarray]:
    """The voxel-wise normalisation of this volume, to apply to any part of it (the same values as on the whole:
    a CT needs no statistics, an MR's are taken from the whole volume here)."""
    if modality == "CT":
        lo, hi = cfg.ct_window

        def ct(part: np.ndarray) -> np.ndarray:
            return ((np.clip(part.astype(np.float32, copy=False), lo, hi) - lo) / (hi - lo) * 2.0 - 1.0
                    ).astype(np.float32, copy=False)
        return ct
    data = array.astype(np.float32, copy=False)
    lo, hi = np.percentile(data, cfg.mr_percentiles)
    clipped = np.clip(data, lo, hi)
    mean, std = float(clipped.mean()), float(clipped.std())
    del data, clipped

    def mr(part: np.ndarray) -> np.ndarray:
        clip = np.clip(part.astype(np.float32, copy=False), lo, hi)
        return ((clip - mean) / (std if std > 1e-6 else 1.0)).astype(np.float32, copy=False)
    return mr


def slices_along(array: np.ndarray, axis: int) -> np.ndarray:
    """(n, H, W) view with the slicing axis first (axis 0 = ITK index k: no copy)."""
    return np.moveaxis(array, axis, 0)


def slice_orientation(cfg: PreprocessConfig, direction: tuple[float, ...] | None) -> InPlaneOrientation:
    """The in-plane move applied before resizing (none with ``orientation='stored'`` or no direction)."""
    if cfg.orientation != "canonical":
        return InPlaneOrientation()
    return in_plane_orientation(direction, cfg.axis)


def slice_layout(cfg: PreprocessConfig, shape: tuple[int, ...], direction: tuple[float, ...] | None = None,
                 spacing: tuple[float, ...] | None = None) -> SliceLayout:
    """How the slices of a volume of this (numpy) shape, ITK direction and (x, y, z) spacing reach the network."""
    rows_axis, cols_axis = (a for a in range(3) if a != cfg.axis)
    stored_spacing = None
    if spacing is not None and len(spacing) == 3:
        stored_spacing = (float(spacing[2 - rows_axis]), float(spacing[2 - cols_axis]))
    return make_layout(slice_orientation(cfg, direction), (int(shape[rows_axis]), int(shape[cols_axis])), cfg.size,
                       stored_spacing, cfg.field_of_view_mm)


def prepare_volume_slices(array: np.ndarray, modality: str, cfg: PreprocessConfig,
                          direction: tuple[float, ...] | None = None,
                          spacing: tuple[float, ...] | None = None) -> torch.Tensor:
    """Normalise a whole volume, cut it along ``cfg.axis``, orient and scale it (given the ITK direction and
    spacing; see slice_layout.py): (n, size, size) float32. Slices are normalised a group at a time, so a
    clinical CT never has a float copy of itself in memory."""
    norm = intensity_map(array, modality, cfg)
    layout = slice_layout(cfg, array.shape, direction, spacing)
    # padding of a field of view larger than the scan: "air", the lowest value (the map never decreases)
    fill = float(norm(np.asarray(array.min()).reshape(1))[0]) if array.size else 0.0
    return layout.to_network(slices_along(array, cfg.axis), fill=fill, transform=norm)


def prepare_label_slices(labels: np.ndarray, cfg: PreprocessConfig, direction: tuple[float, ...] | None = None,
                         spacing: tuple[float, ...] | None = None) -> torch.Tensor:
    """(n, size, size) long label maps, nearest-neighbour resampled along the same cut, orientation and scale."""
    layout = slice_layout(cfg, labels.shape, direction, spacing)
    return layout.to_network(slices_along(labels, cfg.axis).astype(np.float32), nearest=True).long()


def with_context(slices: torch.Tensor, context: int) -> torch.Tensor:
    """(n, S, S) -> (n, 1 + 2 context, S, S): each slice with its neighbours as channels, centre in the middle
    (the first and last slices repeat at the volume's ends); context 0 adds the channel axis only."""
    if context == 0:
        return slices.unsqueeze(1)
    n = slices.shape[0]
    idx = (torch.arange(n)[:, None] + torch.arange(-context, context + 1)[None]).clamp(0, max(0, n - 1))
    return slices[idx]
