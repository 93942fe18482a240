"""The map of the folder in a panel: a picture drawn by the engine, coloured by a chosen column, clickable.

The engine draws (``api.render_map``, Pillow) in a thread worker at the label's exact size, and returns
where it drew each point, so a click maps to the nearest slice without any plotting library on the UI
thread. At most one render runs at a time; a request in between is coalesced into one more.
"""

from __future__ import annotations

from typing import Any

from gcl_app.widgets.common import Throttle, start_worker
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from gcl_engine import api


class _ClickableLabel(QLabel):
    """A picture that says where it was clicked (in its own pixels)."""

    clicked = Signal(float, float)

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        pos = event.position() if hasattr(event, "position") else event.pos()
        self.clicked.emit(float(pos.x()), float(pos.y()))
        super().mousePressEvent(event)


class MapView(QWidget):
    """``set_map(fmap)`` shows a map; ``point_chosen(i)`` when the user clicks near point i."""

    point_chosen = Signal(int)
    rendered = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fmap: Any | None = None
        self.picture: Any | None = None  # the engine's MapImage currently shown
        self.colour = QComboBox(self)
        self.colour.setToolTip("Colour the slices by their volume or by a meta label")
        self.image = _ClickableLabel("No map yet: it is drawn at each checkpoint of a pre-training run.", self)
        self.image.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.image.setWordWrap(True)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image.setMinimumHeight(260)
        self.image.setToolTip("Click a point: its volume opens at that slice")
        self.image.clicked.connect(self.click_at)
        row = QHBoxLayout()
        row.addWidget(QLabel("Colour by", self))
        row.addWidget(self.colour, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.image, 1)
        self._rendering = self._again = False
        self._throttle = Throttle(self.redraw, 300, self)
        self.colour.currentIndexChanged.connect(lambda *_: self.redraw())

    def set_map(self, fmap: Any) -> None:
        self.fmap = fmap
        current = self.colour.currentText()
        self.colour.blockSignals(True)
        self.colour.clear()
        self.colour.addItems(fmap.colour_choices())
        if current in fmap.colour_choices():
            self.colour.setCurrentText(current)
        self.colour.blockSignals(False)
        self.redraw()

    def redraw(self) -> None:
        if self.fmap is None:
            return
        if self._rendering:
            self._again = True
            return
        self._rendering, self._again = True, False
        size = self.image.size()
        start_worker(api.render_map, self.fmap, self.colour.currentText() or "volume", max(size.width(), 320),
                     max(size.height(), 240), True, _connect={"returned": self._show, "errored": self._failed})

    def _show(self, picture: Any) -> None:
        self.picture = picture
        rgba = picture.rgba
        height, width = rgba.shape[:2]
        image = QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()
        self.image.setPixmap(QPixmap.fromImage(image))
        self._finish()

    def _failed(self, exc: Exception) -> None:
        self.image.setText(f"The map could not be drawn: {exc}")
        self._finish()

    def _finish(self) -> None:
        self._rendering = False
        self.rendered.emit()
        if self._again:
            self.redraw()

    def click_at(self, column: float, row: float) -> int | None:
        """What a click at this pixel of the picture chooses (the tests click through here too)."""
        if self.picture is None:
            return None
        index = self.picture.nearest(column, row)
        if index is not None:
            self.point_chosen.emit(index)
        return index

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._throttle.request()
