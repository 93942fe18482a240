"""Open a scanned volume at one slice in the viewer (what a click on the map does).

The volume is read in a worker thread (``api.load_scanned_volume``) and added on the UI thread; a volume
already open as an image layer is reused, so clicking around the map never opens a scan twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from gcl_app.layers import META_KEY, image_layer_data
from gcl_app.widgets.common import start_worker

from gcl_engine import api


def find_image_layer(viewer: Any, source: str, volume_id: str) -> Any | None:
    """An image layer already showing that volume (paths compared resolved: the reader may have had another)."""
    wanted = os.path.realpath(source)
    for layer in viewer.layers:
        meta = (layer.metadata or {}).get(META_KEY) or {}
        if type(layer).__name__ != "Image" or meta.get("volume_id") != volume_id or not meta.get("source"):
            continue
        if os.path.realpath(str(meta["source"])) == wanted:
            return layer
    return None


def show_index(viewer: Any, layer: Any, index: int, axis: int = 0) -> None:
    """Move the viewer to slice ``index`` along data ``axis`` of the layer (through its centre)."""
    shape = np.asarray(layer.data.shape, dtype=float)
    point = (shape - 1) / 2
    point[axis] = float(np.clip(index, 0, shape[axis] - 1))
    world = np.asarray(layer.data_to_world(point))
    for dim in range(viewer.dims.ndim):
        if dim not in viewer.dims.displayed:
            viewer.dims.set_point(dim, float(world[dim]))


def open_at_slice(viewer: Any, source: str, volume_id: str, index: int, axis: int = 0,
                  on_done: Callable[[Any], None] | None = None,
                  on_error: Callable[[Exception], None] | None = None) -> None:
    """Show ``volume_id`` of ``source`` at slice ``index``; ``on_done(layer)`` once it is in view."""
    layer = find_image_layer(viewer, source, volume_id)
    if layer is not None:
        _reveal(viewer, layer, index, axis, on_done)
        return

    def added(volume: api.Volume) -> None:
        existing = find_image_layer(viewer, source, volume_id)  # two clicks while reading: one layer
        if existing is None:
            array, kwargs, _kind = image_layer_data(volume)
            existing = viewer.add_image(array, **kwargs)
        _reveal(viewer, existing, index, axis, on_done)

    start_worker(api.load_scanned_volume, source, volume_id,
                 _connect={"returned": added, "errored": on_error or (lambda _exc: None)})


def _reveal(viewer: Any, layer: Any, index: int, axis: int, on_done: Callable[[Any], None] | None) -> None:
    layer.visible = True
    viewer.layers.selection.active = layer
    show_index(viewer, layer, index, axis)
    if on_done is not None:
        on_done(layer)
