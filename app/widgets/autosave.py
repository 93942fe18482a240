"""Autosave of the annotations: every N seconds when something changed, written in a thread.

Painting is the user's only irreplaceable work; a crash or a closed window must not lose more than a
few seconds of it. The write (compressed NIfTI, atomic) runs in a thread worker on a copy of the
array so a large volume never freezes the brush.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from gcl_app.widgets.common import start_worker
from qtpy.QtCore import QObject, QTimer, Signal


class Autosaver(QObject):
    """Watches one labels layer; ``save_now`` or the timer writes it with ``save_fn(array, context)``.

    ``context_fn()`` runs on the UI thread just before each save (it may read widgets: class names,
    geometry); ``save_fn`` runs in the worker thread with plain data only.
    """

    saved = Signal(object)  # Path
    failed = Signal(str)
    edited = Signal()  # the layer moved along its edit history: a stroke, an undo or a redo (no paint event for those)

    def __init__(self, interval_s: float, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dirty = False
        self.saving = False
        self._layer: Any | None = None
        self._history: tuple[int, int] | None = None
        self._save_fn: Callable[[np.ndarray, Any], Path] | None = None
        self._context_fn: Callable[[], Any] = lambda: None
        self._timer = QTimer(self)
        self._timer.setInterval(int(max(interval_s, 1) * 1000))
        self._timer.timeout.connect(self._on_timer)
        self._timer.start()

    def set_interval(self, seconds: float) -> None:
        self._timer.setInterval(int(max(seconds, 1) * 1000))

    def watch(self, layer: Any, save_fn: Callable[[np.ndarray, Any], Path],
              context_fn: Callable[[], Any]) -> None:
        self.unwatch()
        self._layer, self._save_fn, self._context_fn = layer, save_fn, context_fn
        layer.events.paint.connect(self.mark_dirty)
        layer.events.data.connect(self.mark_dirty)
        layer.events.set_data.connect(self._check_history)  # undo/redo refresh the layer, nothing more
        self._history = _history_position(layer)

    def unwatch(self) -> None:
        if self._layer is not None:
            self._layer.events.paint.disconnect(self.mark_dirty)
            self._layer.events.data.disconnect(self.mark_dirty)
            self._layer.events.set_data.disconnect(self._check_history)
        self._layer = self._save_fn = None

    def _check_history(self, *_: Any) -> None:
        """An undo or redo moves the layer along its edit history: save that too (and say so)."""
        if self._layer is None:
            return
        position = _history_position(self._layer)
        if position != self._history:
            self._history = position
            self.mark_dirty()
            self.edited.emit()

    def mark_dirty(self, *_: Any) -> None:
        self.dirty = True

    def _on_timer(self) -> None:
        self._check_history()
        if self.dirty and not self.saving:
            self.save_now()

    def save_now(self, then: Callable[[Path], None] | None = None,
                 on_error: Callable[[str], None] | None = None) -> bool:
        """Start a save (even if clean); ``then(path)`` runs on the UI thread once it is on disk."""
        if self._layer is None or self._save_fn is None:
            return False
        array, save_fn, context = np.array(self._layer.data, copy=True), self._save_fn, self._context_fn()
        self.dirty, self.saving = False, True

        def done(path: Path) -> None:
            self.saving = False
            self.saved.emit(path)
            if then is not None:
                then(path)

        def error(exc: Exception) -> None:
            self.saving, self.dirty = False, True
            self.failed.emit(str(exc))
            if on_error is not None:
                on_error(str(exc))

        start_worker(save_fn, array, context, _connect={"returned": done, "errored": error})
        return True


def _history_position(layer: Any) -> tuple[int, int]:
    """Where a labels layer stands in its undo/redo history: (undo steps, redo steps). Paint, undo and redo
    each change it; slicing and redraws do not. napari keeps the queues private, so unknown layers give (0, 0)
    and rely on the paint and data events alone."""
    real = getattr(layer, "__wrapped__", layer)  # the plugin proxy refuses private attributes
    return len(getattr(real, "_undo_history", ())), len(getattr(real, "_redo_history", ()))
