"""The editable class list: names and colours of the labels a user paints (index 0 is background).

The names travel into the fine-tuning config and the NIfTI sidecars; the colours into every labels
layer of the image (annotations, preview, prediction) so that one class looks the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QColorDialog, QHBoxLayout, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
]


def default_colour(index: int) -> tuple[int, int, int]:
    """Palette colours first, then evenly spread hues (stable per index)."""
    if index <= len(PALETTE):
        return PALETTE[index - 1]
    colour = QColor.fromHsvF((index * 0.618033988749895) % 1.0, 0.65, 0.95)
    return (colour.red(), colour.green(), colour.blue())


def palette_color_dict(n_classes: int) -> dict[int | None, np.ndarray]:
    """The default class colours as napari's ``DirectLabelColormap`` mapping (what a fresh class list shows),
    for a labels layer whose classes have no list of their own (a prediction of an image never annotated)."""
    colours: dict[int | None, np.ndarray] = {None: np.array([0.6, 0.6, 0.6, 1.0]), 0: np.zeros(4)}
    for index in range(1, n_classes):
        colours[index] = np.array([*(c / 255 for c in default_colour(index)), 1.0])
    return colours


class ClassList(QWidget):
    """A two-column table (name, colour) for classes 1..n plus add/remove buttons."""

    changed = Signal()

    def __init__(self, names: Sequence[str] = ("background", "foreground"), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["Class", "Colour"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(90)
        self.table.setToolTip("Label 1 is the first row, 2 the second… Double-click a name to rename it; "
                              "click a colour to change it.")
        self.add_button = QPushButton("Add class", self)
        self.remove_button = QPushButton("Remove last", self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self._colours: list[tuple[int, int, int]] = []
        self.add_button.clicked.connect(lambda: self.add_class())
        self.remove_button.clicked.connect(self.remove_last)
        self.table.itemChanged.connect(lambda _item: self.changed.emit())
        self.table.cellClicked.connect(self._on_cell_clicked)
        self.set_names(names)

    def set_names(self, names: Sequence[str] | Mapping[int, str]) -> None:
        """Replace the classes; a mapping's gaps get "class i" (names[0] is the background's)."""
        if isinstance(names, Mapping):
            top = max([0, *names])
            names = [names.get(i, "background" if i == 0 else f"class {i}") for i in range(top + 1)]
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        self._colours = []
        for name in list(names)[1:]:
            self._append_row(name)
        self.table.blockSignals(False)
        self.changed.emit()

    def add_class(self, name: str | None = None) -> None:
        self.table.blockSignals(True)
        self._append_row(name or f"class {self.table.rowCount() + 1}")
        self.table.blockSignals(False)
        self.changed.emit()

    def remove_last(self) -> None:
        if self.table.rowCount() > 1:
            self.table.removeRow(self.table.rowCount() - 1)
            self._colours.pop()
            self.changed.emit()

    def _append_row(self, name: str) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(name))
        self._colours.append(default_colour(row + 1))
        swatch = QTableWidgetItem("")
        swatch.setFlags(swatch.flags() & ~Qt.ItemFlag.ItemIsEditable)
        self.table.setItem(row, 1, swatch)
        self._paint_swatch(row)

    def _paint_swatch(self, row: int) -> None:
        item = self.table.item(row, 1)
        if item is not None:
            item.setBackground(QColor(*self._colours[row]))

    def _on_cell_clicked(self, row: int, column: int) -> None:
        if column != 1:
            return
        colour = QColorDialog.getColor(QColor(*self._colours[row]), self, "Class colour")
        if colour.isValid():
            self.set_colour(row + 1, (colour.red(), colour.green(), colour.blue()))

    def set_colour(self, index: int, rgb: tuple[int, int, int]) -> None:
        self._colours[index - 1] = tuple(int(c) for c in rgb)  # type: ignore[assignment]
        self._paint_swatch(index - 1)
        self.changed.emit()

    def names(self) -> list[str]:
        """Background first, then one name per row (blank names become "class i")."""
        names = ["background"]
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            text = item.text().strip() if item is not None else ""
            names.append(text or f"class {row + 1}")
        return names

    def color_dict(self) -> dict[int | None, np.ndarray]:
        """napari's ``DirectLabelColormap`` mapping: transparent background, one RGBA per class.

        Labels beyond the list (painted before a class was removed) show grey rather than vanish.
        """
        colours: dict[int | None, np.ndarray] = {None: np.array([0.6, 0.6, 0.6, 1.0]), 0: np.zeros(4)}
        for index, rgb in enumerate(self._colours, start=1):
            colours[index] = np.array([*(c / 255.0 for c in rgb), 1.0])
        return colours
