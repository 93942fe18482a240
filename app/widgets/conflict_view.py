"""The conflict matrix in a panel: per branch, a heat map of how often two meta labels fought, in plain words.

Cell colour: share of steps in which the pair's gradients pointed apart (white never, red always); the
tooltip holds the mean cosine. The line above each table names the pair that fought most.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import QAbstractItemView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget


def heat_colour(rate: float) -> QColor:
    fade = int(round(255 - 200 * min(max(rate, 0.0), 1.0)))
    return QColor(255, fade, fade)


class ConflictView(QWidget):
    """``show_matrices({branch: ConflictMatrix})`` fills one sentence and one table per branch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.empty = QLabel("No conflicts yet: they are logged from the first step of a run with two or more "
                            "meta labels.", self)
        self.empty.setWordWrap(True)
        self.layout_.addWidget(self.empty)
        self.sentences: dict[str, QLabel] = {}
        self.tables: dict[str, QTableWidget] = {}

    def show_matrices(self, matrices: dict[str, Any]) -> None:
        for widget in [*self.sentences.values(), *self.tables.values()]:
            self.layout_.removeWidget(widget)
            widget.deleteLater()
        self.sentences, self.tables = {}, {}
        self.empty.setVisible(not matrices)
        for branch, matrix in matrices.items():
            sentence = QLabel(matrix.sentence(), self)
            sentence.setWordWrap(True)
            table = self._table(matrix)
            self.layout_.addWidget(sentence)
            self.layout_.addWidget(table)
            self.sentences[branch], self.tables[branch] = sentence, table

    def _table(self, matrix: Any) -> QTableWidget:
        names = list(matrix.labels)
        table = QTableWidget(len(names), len(names), self)
        table.setHorizontalHeaderLabels(names)
        table.setVerticalHeaderLabels(names)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for i in range(len(names)):
            for j in range(len(names)):
                if i == j:
                    item = QTableWidgetItem("–")
                else:
                    rate, cos = float(matrix.conflict_rate[i, j]), float(matrix.cosine[i, j])
                    item = QTableWidgetItem(f"{rate:.0%}")
                    item.setBackground(QBrush(heat_colour(rate)))
                    item.setForeground(QBrush(QColor("#202020")))
                    item.setToolTip(f"{names[i]} and {names[j]}: gradients pointed apart in {rate:.0%} of "
                                    f"{int(matrix.steps[i, j])} steps; mean cosine {cos:+.2f}")
                table.setItem(i, j, item)
        table.resizeColumnsToContents()
        table.resizeRowsToContents()
        frame = 2 * table.frameWidth()
        table.setFixedHeight(table.horizontalHeader().sizeHint().height() + table.verticalHeader().length() + frame)
        return table
