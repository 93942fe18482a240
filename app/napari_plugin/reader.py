"""napari reader: medical scans (every format of the engine's table, DICOM folders) placed in patient space.

What it accepts is the engine's one suffix/magic table (``api.is_scan_path``; the manifest's patterns are
checked against it by a test), and every file goes through ``api.load_volume`` (the engine's checks and
DICOM ordering), so what napari shows is exactly what pre-training and fine-tuning see. Reading never
imports torch. A file with a ``<name>.labels.json`` sidecar (what GCL Studio writes) opens as a labels
layer with its class names.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from gcl_app.layers import LayerDataTuple, image_layer_data, labels_layer_data
from gcl_app.project import read_label_names

from gcl_engine import api

# Who hears that a scan could not be read (the panels, which say so in their status line): napari itself shows
# only a truncated toast. Plain callables (path, message), so reading never imports Qt; a panel relays them to
# its UI thread. Registered with add_failure_listener, removed when the panel closes.
_FAILURE_LISTENERS: list[Callable[[str, str], None]] = []


def add_failure_listener(listener: Callable[[str, str], None]) -> None:
    _FAILURE_LISTENERS.append(listener)


def remove_failure_listener(listener: Callable[[str, str], None]) -> None:
    if listener in _FAILURE_LISTENERS:
        _FAILURE_LISTENERS.remove(listener)


def is_readable(path: str | os.PathLike) -> bool:
    return api.is_scan_path(path)


def get_reader(path: str | Sequence[str]) -> Callable[[str | Sequence[str]], list[LayerDataTuple]] | None:
    """napari's reader hook: a reading function when every path is a scan this plugin understands."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(is_readable(p) for p in paths):
        return None
    return read_scans


def read_scans(path: str | Sequence[str]) -> list[LayerDataTuple]:
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    layers = []
    for p in paths:
        try:
            layers.append(read_scan(p))
        except Exception as exc:  # napari reports it too (a toast); the panels say which file and why
            for listener in list(_FAILURE_LISTENERS):
                listener(os.fspath(p), str(exc) or type(exc).__name__)
            raise
    return layers


def read_scan(path: str | os.PathLike) -> LayerDataTuple:
    """One layer per scan: labels (integer pixels and a names sidecar) or image."""
    volume = api.load_volume(path)
    for note in volume.meta.notes:  # NaN voxels replaced, a sheared grid: napari shows it as a notification
        warnings.warn(note, UserWarning, stacklevel=2)
    names = read_label_names(path)
    if names is not None and np.issubdtype(volume.array.dtype, np.integer):
        return labels_layer_data(volume.array, volume, names, name=volume.meta.volume_id)
    return image_layer_data(volume)
