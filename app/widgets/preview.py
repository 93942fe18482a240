"""The preview layer's life: slices streamed by a running fine-tune, then the whole volume, then accepting.

Kept apart from the panel because it has its own state: which slices of which image hold a real
prediction (``values``: the prediction itself). Accepting a slice that was never predicted would copy zeros
over the user's work, so it is refused. The layer shows the prediction only on slices nobody painted: under a
painted slice a wrong preview looked like annotation (issue 16); it is drawn as an outline, never filled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gcl_app.layers import volume_of_layer
from gcl_app.widgets import annotation_layers as tied
from gcl_app.widgets.common import Throttle, start_worker
from gcl_app.widgets.slices import current_slice
from qtpy.QtCore import QObject, Signal

from gcl_engine import api


def predict_volume(model: str, volume: api.Volume, device: str, uncertainty: bool = False) -> api.Prediction:
    """Whole-volume prediction (a thread worker runs this: seconds, not minutes); with ``uncertainty`` also the
    per-voxel entropy over the classes (every class's map is then resampled: slower, so only when shown)."""
    return api.Segmenter.load(model, api.PredictConfig(device=device)).predict(volume, keep_uncertainty=uncertainty)


class PreviewController(QObject):
    """Writes predictions into an image's preview layer and remembers which slices are predicted."""

    updated = Signal(str)  # "slices" while training, "volume" once the whole volume is predicted
    failed = Signal(str)

    def __init__(self, viewer: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.image: Any | None = None
        self.predicted: set[int] = set()
        self.interpolated: set[int] = set()  # slices showing the first guess (interpolation), not the network
        self.values: np.ndarray | None = None  # the prediction, also where the layer hides it (painted slices)
        self.painted: Callable[[], set[int]] = set
        self._hidden: set[int] = set()
        self.with_uncertainty = False  # the panel's "Show uncertainty": whole-volume predictions keep the entropy
        self.uncertainty_shown_for: str | None = None  # the model whose uncertainty the layer holds
        self._pending: dict[int, np.ndarray] = {}
        self._throttle = Throttle(self._apply_pending, 250, self)

    def begin(self, image: Any) -> None:
        """A fine-tune of ``image`` starts: its previews go to that image's layer whatever is selected later."""
        if not tied.same_layer(image, self.image):
            self.predicted, self.values, self._hidden = set(), None, set()
            self.interpolated = set()
        self.image = image

    def show_guess(self, image: Any, slices: Sequence[int], masks: np.ndarray) -> bool:
        """The first guess (interpolation between painted slices) in the preview layer, until the network's
        first preview replaces it; False when the network already predicts this image."""
        if self.predicted and tied.same_layer(image, self.image):
            return False
        self.begin(image)
        preview = self.layer()
        if preview is None:
            return False
        if self.values is None or self.values.shape != preview.data.shape:
            self.values = np.zeros(preview.data.shape, dtype=preview.data.dtype)
        for k in self.interpolated - set(int(k) for k in slices):  # no longer between painted slices
            self.values[k] = 0
            preview.data[k] = 0
        for k, mask in zip(slices, masks, strict=True):
            self.values[k] = mask.astype(self.values.dtype)
            preview.data[k] = self.values[k]
        self.interpolated = set(int(k) for k in slices)
        self._hidden -= self.interpolated
        preview.refresh()
        self.hide_painted()
        self.updated.emit("guess")
        return True

    def layer(self) -> Any | None:
        return tied.find_layer(self.viewer, self.image, tied.PREVIEW) if self.image is not None else None

    def on_preview(self, event: api.Preview) -> None:
        """Keep the newest mask per slice; the layer is refreshed at most four times a second."""
        for k, mask in zip(event.slices, event.masks, strict=False):
            self._pending[int(k)] = mask
        self._throttle.request()

    def _apply_pending(self) -> None:
        preview, pending = self.layer(), self._pending
        self._pending = {}
        written = tied.set_slices(preview, list(pending), list(pending.values())) if preview is not None else []
        if written:
            if self.values is None or self.values.shape != preview.data.shape:
                self.values = np.zeros(preview.data.shape, dtype=preview.data.dtype)
            for k in written:
                self.values[k] = preview.data[k]
            self._hidden -= set(written)
            self.predicted.update(written)
            self.interpolated -= set(written)  # the network's slice replaces the guess there
            self.hide_painted()
            self.updated.emit("slices")

    def flush(self) -> None:
        """Show what is pending now (the job ended)."""
        self._throttle.flush()

    def predict(self, model: str, device: str, names: list[str], after: Callable[[], None]) -> None:
        """Predict the whole volume in a thread worker; ``after`` runs on the UI thread when shown."""
        image = self.image
        if image is None:
            return
        self.flush()

        def show(prediction: api.Prediction) -> None:
            if prediction.uncertainty is not None:
                tied.show_uncertainty(self.viewer, image, prediction.uncertainty)
                self.uncertainty_shown_for = model
            preview = tied.ensure_layer(self.viewer, image, tied.PREVIEW, names)
            labels = prediction.labels
            if tuple(labels.shape) == tuple(preview.data.shape):
                self.values = labels.astype(np.uint8 if labels.max() < 256 else np.uint16)
                self._hidden = set()
                preview.data = self.values.copy()
                preview.editable = False  # napari makes a layer editable again whenever its data is replaced
                self.predicted = set(range(labels.shape[0]))
                self.interpolated = set()
                self.hide_painted()
            after()
            self.updated.emit("volume")

        start_worker(predict_volume, model, volume_of_layer(image), device, self.with_uncertainty,
                     _connect={"returned": show, "errored": lambda e: self.failed.emit(f"Prediction failed: {e}")})

    def accept(self, annotations: Any, image: Any) -> tuple[bool, str]:
        """Copy the predicted slice in view into ``annotations``; (done, what to tell the user)."""
        preview = tied.find_layer(self.viewer, image, tied.PREVIEW)
        k = current_slice(self.viewer, annotations)
        if preview is None or not tied.same_layer(image, self.image) or k not in self.predicted | self.interpolated:
            return False, f"Slice {k} has no prediction yet: fine-tune first (or wait for the whole-volume preview)."
        accept_into(annotations, k, self.values[k])
        self.hide_painted()
        return True, (f"Slice {k}: preview accepted into the annotations; correct it if needed "
                      "(Ctrl-Z undoes the Accept).")

    def hide_painted(self) -> None:
        """Blank the preview on painted slices, show it again where the paint was erased (kept in ``values``)."""
        preview = self.layer()
        if preview is None or self.values is None or self.values.shape != preview.data.shape:
            return
        painted = self.painted() & (self.predicted | self.interpolated)
        changed = False
        for k in painted - self._hidden:
            preview.data[k] = 0
            changed = True
        for k in self._hidden - painted:
            preview.data[k] = self.values[k]
            changed = True
        self._hidden = painted
        if changed:
            preview.refresh()

    def shown_slices(self) -> set[int]:
        """The predicted (or first-guess) slices the layer shows (not hidden under a painted one)."""
        return (self.predicted | self.interpolated) - self._hidden


def accept_into(annotations: Any, k: int, values: np.ndarray) -> None:
    """Write ``values`` into slice ``k`` of a labels layer as one edit of its history, so napari's undo
    (Ctrl-Z) takes an Accept back like a paint stroke; only the pixels that change are recorded."""
    new = np.asarray(values).astype(annotations.data.dtype, copy=False)
    rows, cols = np.nonzero(np.asarray(annotations.data[k]) != new)
    if rows.size:
        annotations.data_setitem((np.full(rows.shape, k), rows, cols), new[rows, cols])
