"""Does this scan fit? One line in the annotate and predict panels, warning when a scan lies outside the pool.

``check(layer)`` scores the image layer's slices against the project's pre-training pool in a thread worker
(``api.check_fit``: one volume through the encoder; the pool's calibration is read from the run folder, or
made once there). A result that arrives after the user moved on to another image is dropped.
"""

from __future__ import annotations

from typing import Any

from gcl_app.layers import volume_of_layer
from gcl_app.project import Project
from gcl_app.widgets.common import start_worker
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QLabel, QWidget

from gcl_engine import api

WARNING_STYLE = "color: #ffb74d; font-weight: bold;"


def verdict_text(verdict: Any) -> str:
    if verdict.inside:
        return (f"Fits the pre-training pool: score {verdict.score:.3f} ≤ threshold {verdict.threshold:.3f}.")
    return (f"⚠ This scan lies outside the pre-training pool: score {verdict.score:.3f} > threshold "
            f"{verdict.threshold:.3f} ({verdict.outside_share:.0%} of its slices beyond). Pre-training saw nothing "
            "like it: expect to paint more slices, or pre-train on scans like this one.")


class FitWarning(QLabel):
    """Shows the verdict of the last check; ``checked(verdict or None)`` when a check ends."""

    checked = Signal(object)

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.project = project
        self.setWordWrap(True)
        self.setVisible(False)
        self.verdict: Any | None = None
        self._generation = 0

    def check(self, layer: Any) -> bool:
        """Start a check of ``layer`` against the project's checkpoint; False when there is none."""
        checkpoint = self.project.pretrained_checkpoint()
        self._generation += 1
        if checkpoint is None or layer is None or layer.ndim != 3:
            self.setVisible(False)
            return False
        generation = self._generation
        self.setStyleSheet("")
        self.setText("Checking whether this scan fits the pre-training pool …")
        self.setVisible(True)
        start_worker(api.check_fit, str(checkpoint), volume_of_layer(layer),
                     _connect={"returned": lambda v: self._show(generation, v),
                               "errored": lambda exc: self._failed(generation, exc)})
        return True

    def _show(self, generation: int, verdict: Any) -> None:
        if generation != self._generation:
            return
        self.verdict = verdict
        try:
            self.setStyleSheet("" if verdict.inside else WARNING_STYLE)
            self.setText(verdict_text(verdict))
            self.setToolTip(verdict.line())
            self.checked.emit(verdict)
        except RuntimeError:  # the panel was closed while the check ran
            pass

    def _failed(self, generation: int, exc: Exception) -> None:
        if generation != self._generation:
            return
        self.verdict = None
        try:
            self.setStyleSheet("")
            self.setText(f"Fit check not possible: {exc}")
            self.checked.emit(None)
        except RuntimeError:
            pass
