"""Which slice to paint next: the model's ranking of the unpainted slices, drawn along the slice axis.

The engine ranks (``api.rank_slices``: the middle of the largest gap between painted slices and the ends of the
structures the model sees, chosen on the annotation benchmark); this widget only shows the ranking and hands
back the slice a user picks. The strip is painted with QPainter (one bar per slice, a few hundred at most), so
redrawing after each fine-tune costs the UI thread well under a millisecond and needs no worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qtpy.QtCore import QRectF, Qt, Signal
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QLabel, QListWidget, QListWidgetItem, QSizePolicy, QVBoxLayout, QWidget

BAR = QColor(150, 150, 150)  # grey: the slice strip above uses blue for predicted slices
BEST = QColor(240, 80, 80)  # red: the one Shift-N goes to
PAINTED = QColor(240, 200, 60)  # amber, as the slice strip above shows painted slices
FRAME = QColor("#5c6370")
TOP_N = 5


@dataclass(frozen=True)
class Ranking:
    """A ranking as the panel keeps it: slices best first with their scores, and what it was computed for."""

    slices: tuple[int, ...]
    scores: tuple[float, ...]
    n_slices: int
    painted: tuple[int, ...]

    @classmethod
    def from_scores(cls, scores: Sequence, n_slices: int, painted: Sequence[int]) -> Ranking:
        """From the engine's ``SliceScore`` list (best first)."""
        return cls(tuple(int(s.slice) for s in scores), tuple(float(s.score) for s in scores), int(n_slices),
                   tuple(sorted(int(k) for k in painted)))

    def best(self, exclude: Sequence[int] = ()) -> int | None:
        """The best-ranked slice not in ``exclude`` (slices painted since the ranking was made)."""
        skip = set(int(k) for k in exclude) | set(self.painted)
        return next((k for k in self.slices if k not in skip), None)


class SuggestionStrip(QWidget):
    """One bar per slice, its height the slice's score (normalised); painted slices amber, the best red.
    A click picks the slice under the mouse."""

    clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ranking: Ranking | None = None
        self.setMinimumHeight(36)
        self.setMaximumHeight(48)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Suggested next slices along the slice axis: taller is better; amber = painted, red = the best")

    def set_ranking(self, ranking: Ranking | None) -> None:
        self.ranking = ranking
        self.update()

    def slice_at(self, x: float) -> int | None:
        if self.ranking is None or self.ranking.n_slices == 0 or self.width() <= 0:
            return None
        k = int(x / self.width() * self.ranking.n_slices)
        return min(max(k, 0), self.ranking.n_slices - 1)

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        k = self.slice_at(event.position().x() if hasattr(event, "position") else event.x())
        if k is not None:
            self.clicked.emit(k)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setPen(QPen(FRAME))
        painter.drawRect(0, 0, self.width() - 1, self.height() - 1)
        r = self.ranking
        if r is None or r.n_slices == 0:
            painter.end()
            return
        top = max((s for s in r.scores if s == s and s != float("inf")), default=0.0)
        score_of = dict(zip(r.slices, r.scores, strict=False))
        best = r.best()
        w, h = self.width() / r.n_slices, self.height() - 4
        painter.setPen(Qt.PenStyle.NoPen)
        for k in range(r.n_slices):
            if k in r.painted:
                colour, height = PAINTED, h
            elif k in score_of:
                s = score_of[k]
                colour = BEST if k == best else BAR
                height = h * (min(s, top) / top if top > 0 else 0.0)
                height = max(height, 2.0)
            else:
                continue
            painter.setBrush(colour)
            painter.drawRect(QRectF(k * w, 2 + h - height, max(w - 0.5, 1.0), height))
        painter.end()


class SuggestionView(QWidget):
    """The strip and the top suggestions as a list; ``chosen`` carries the slice a user clicks."""

    chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ranking: Ranking | None = None
        self.title = QLabel("Suggested next slices: fine-tune first", self)
        self.title.setWordWrap(True)
        self.strip = SuggestionStrip(self)
        self.top = QListWidget(self)
        self.top.setMaximumHeight(92)
        self.top.setToolTip("Double-click a slice to go there")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.title, self.strip, self.top):
            layout.addWidget(widget)
        self.strip.clicked.connect(self.chosen.emit)
        self.strip.hide()  # nothing to draw before the first ranking: the title says what to do
        self.top.hide()
        self.top.itemActivated.connect(lambda item: self.chosen.emit(int(item.data(Qt.ItemDataRole.UserRole))))

    def show_ranking(self, ranking: Ranking | None) -> None:
        self.ranking = ranking
        self.strip.set_ranking(ranking)
        self.top.clear()
        self.strip.setVisible(ranking is not None and bool(ranking.slices))
        self.top.setVisible(ranking is not None and bool(ranking.slices))
        if ranking is None or not ranking.slices:
            self.title.setText("Suggested next slices: none (every slice is painted)" if ranking is not None
                               else "Suggested next slices: fine-tune first")
            return
        self.title.setText(f"Suggested next slices ({len(ranking.slices)} unpainted ranked)")
        for k, score in list(zip(ranking.slices, ranking.scores, strict=False))[:TOP_N]:
            item = QListWidgetItem(f"slice {k}   score {score:.2f}")
            item.setData(Qt.ItemDataRole.UserRole, int(k))
            self.top.addItem(item)
