"""Opening scans into the window's viewer: read in a worker thread, add layers on the UI thread.

Reading a CT series can take seconds (decompression, DICOM ordering); doing it on the UI thread is
the frozen window users complain about. Every file goes through ``api.load_volume`` so the viewer
shows exactly what training sees, placed in patient space by :mod:`gcl_app.layers`. A file with a
``.labels.json`` sidecar (what GCL Studio writes) opens as a labels layer with its class names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gcl_app.layers import LayerDataTuple, image_layer_data, labels_layer_data
from gcl_app.project import read_label_names
from gcl_app.widgets.common import start_worker
from qtpy.QtCore import QObject, Signal

from gcl_engine import api


def read_layer_data(path: str | Path) -> LayerDataTuple:
    """One layer tuple per scan: labels (integer pixels and a names sidecar) or image."""
    volume = api.load_volume(path)
    names = read_label_names(path)
    if names is not None and np.issubdtype(volume.array.dtype, np.integer):
        return labels_layer_data(volume.array, volume, names, name=volume.meta.volume_id)
    return image_layer_data(volume)


def add_layer(viewer: Any, data: LayerDataTuple, visible: bool = True) -> Any:
    array, kwargs, kind = data
    layer = getattr(viewer, f"add_{kind}")(array, **kwargs)
    layer.visible = visible
    if kind == "labels":
        layer.opacity = 0.5
    return layer


def _read_each(items: Sequence[tuple[str, Path, bool]]) -> Iterator[tuple[str, bool, Any]]:
    """Worker body: yields (key, visible, layer tuple or the exception) so one bad file stops nothing."""
    for key, path, visible in items:
        try:
            yield key, visible, read_layer_data(path)
        except (api.GCLError, OSError, RuntimeError, ValueError) as exc:
            yield key, visible, exc


class ScanLoader(QObject):
    """Loads a batch of scans; ``loaded(key, layer)`` per layer, ``failed(key, reason)``, then ``done``.

    Each batch has a generation number: results of a batch that was superseded (the user opened another
    project while scans were still being read) are dropped instead of landing in the wrong project.
    """

    loaded = Signal(str, object)
    failed = Signal(str, str)
    done = Signal()

    def __init__(self, viewer: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self._generation = 0

    def load(self, items: Sequence[tuple[str, Path, bool]]) -> None:
        """``items``: (key, path, visible); the key is what the caller stores (e.g. ``sample:...``)."""
        self._generation += 1
        batch = self._generation
        start_worker(_read_each, list(items), _connect={"yielded": lambda item: self._on_item(batch, item),
                                                        "finished": lambda: self._on_done(batch)})

    def cancel(self) -> None:
        """Forget the batch in progress (its worker finishes reading, its layers are never added)."""
        self._generation += 1

    def _on_item(self, batch: int, item: tuple[str, bool, Any]) -> None:
        if batch != self._generation:
            return
        key, visible, result = item
        if isinstance(result, Exception):
            self.failed.emit(key, str(result))
            return
        self.loaded.emit(key, add_layer(self.viewer, result, visible))

    def _on_done(self, batch: int) -> None:
        if batch == self._generation:
            self.done.emit()
