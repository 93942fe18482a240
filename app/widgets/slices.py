"""Which slice the user is looking at, which slices are annotated, and moving between them.

Slices are along axis 0 of the (k, j, i) array, the axis the engine trains on. The viewer works in
world millimetres, so the slice in view is found by mapping the viewer's point into the layer's data
coordinates (this also holds for flipped or oblique scans).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def annotated_slices(labels: np.ndarray) -> list[int]:
    """Indices k with at least one labelled voxel."""
    flat = np.asarray(labels).reshape(labels.shape[0], -1)
    return [int(k) for k in np.flatnonzero(flat.any(axis=1))]


def next_unannotated(labels: np.ndarray, current: int) -> int | None:
    """The first slice after ``current`` (wrapping around) without any label; None when all are labelled."""
    n = labels.shape[0]
    done = set(annotated_slices(labels))
    for offset in range(1, n + 1):
        k = (current + offset) % n
        if k not in done:
            return k
    return None


def current_slice(viewer: Any, layer: Any) -> int:
    """The layer's slice index k at the viewer's current point (clipped to the volume)."""
    data_point = np.asarray(layer.world_to_data(viewer.dims.point))
    k = int(np.round(data_point[0]))
    return int(np.clip(k, 0, layer.data.shape[0] - 1))


def show_slice(viewer: Any, layer: Any, k: int) -> None:
    """Move the viewer to slice k of the layer (its centre, so oblique scans land on the right slice)."""
    shape = np.asarray(layer.data.shape, dtype=float)
    centre = [float(k), (shape[1] - 1) / 2, (shape[2] - 1) / 2]
    world = np.asarray(layer.data_to_world(centre))
    sliced_axes = [axis for axis in range(viewer.dims.ndim) if axis not in viewer.dims.displayed]
    for axis in sliced_axes:
        viewer.dims.set_point(axis, float(world[axis]))
