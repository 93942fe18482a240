"""A strip of one cell per slice under the form: which slices are painted, accepted or only predicted.

Why: napari's slider says where you are, not what each slice holds. A clinician deciding where to paint next
(or which predicted slice to check) reads the strip; a click on a cell moves the viewer to that slice.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QRect, Qt, Signal
from qtpy.QtGui import QColor, QPainter
from qtpy.QtWidgets import QSizePolicy, QWidget

PAINTED, ACCEPTED, PREDICTED, EMPTY = "painted", "accepted", "predicted", ""
COLOURS = {PAINTED: QColor(240, 200, 60), ACCEPTED: QColor(80, 200, 120), PREDICTED: QColor(110, 140, 200),
           EMPTY: QColor(60, 60, 60)}
LEGEND = ("Slices: yellow painted · green accepted from the preview · blue predicted only · grey nothing yet. "
          "Click a slice to go there.")


def slice_states(n: int, painted: set[int], accepted: set[int], predicted: set[int]) -> list[str]:
    """One word per slice; an accepted slice the user painted over afterwards still counts as accepted."""
    return [ACCEPTED if k in accepted and k in painted else PAINTED if k in painted
            else PREDICTED if k in predicted else EMPTY for k in range(n)]


class SliceStrip(QWidget):
    """Draws :func:`slice_states` as cells (the current slice outlined); ``clicked`` gives a slice index."""

    clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.states: list[str] = []
        self.current: int | None = None
        self.setMinimumHeight(14)
        self.setMaximumHeight(18)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(LEGEND)

    def set_states(self, states: list[str], current: int | None) -> None:
        self.states, self.current = list(states), current
        self.update()

    def _cell(self, k: int) -> QRect:
        n = max(len(self.states), 1)
        left, right = k * self.width() // n, (k + 1) * self.width() // n
        return QRect(left, 0, max(right - left, 1), self.height())

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        for k, state in enumerate(self.states):
            painter.fillRect(self._cell(k).adjusted(0, 0, -1 if self.width() > 2 * len(self.states) else 0, 0),
                             COLOURS[state])
        if self.current is not None and 0 <= self.current < len(self.states):
            painter.setPen(QColor(255, 255, 255))
            painter.drawRect(self._cell(self.current).adjusted(0, 0, -1, -1))
        painter.end()

    def slice_at(self, x: float) -> int | None:
        if not self.states or self.width() <= 0:
            return None
        return min(max(int(x * len(self.states) // self.width()), 0), len(self.states) - 1)

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        k = self.slice_at(event.position().x() if hasattr(event, "position") else event.x())
        if k is not None and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(k)


def connect_dims(viewer, update: Callable[[], None]) -> None:
    """Redraw the strip's current-slice mark when the viewer moves (napari's current, non-deprecated event)."""
    viewer.dims.events.point.connect(update)
