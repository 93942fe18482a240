"""Live loss curves of a run: for pre-training one line per meta label and branch, conflict rate on the right;
for a fine-tune its loss alone.

The engine's Metric keys are ``<branch>/loss/<meta label>``, ``<branch>/conflict_rate`` and ``loss``;
seeing each meta label's loss and how often their gradients conflict is what tells a user whether a
meta label helps.

Why not matplotlib's Qt canvas: measured on 2 cores with training running, one ``FigureCanvasQTAgg``
draw (text rasterisation mostly) blocked the UI thread for 100-170 ms. Here the figure is a plain Agg
figure rendered in a thread worker (Agg's many short C calls let the GIL switch, so the event loop
keeps running), and the finished bitmap is shown in a QLabel. At most one render runs at a time;
requests in between coalesce, and the last state is always drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from gcl_app.widgets.common import Throttle, start_worker
from gcl_app.widgets.meta_words import metric_name
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

DARK_BG = "#262930"  # napari's default dark theme background
TEXT = "#d0d0d0"
DPI = 80

Series = dict[str, tuple[list[int], list[float]]]


def is_loss_key(key: str) -> bool:
    return key == "loss" or "/loss/" in key


def is_conflict_key(key: str) -> bool:
    return key.endswith("conflict_rate")


def figure_of(holder: dict[str, Any]) -> Any:
    """The plot's Agg figure, made on first use in the render worker: importing matplotlib (~0.3 s idle,
    seconds on a loaded machine) then never happens on the UI thread when the Data panel opens."""
    if holder.get("figure") is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(dpi=DPI, facecolor=DARK_BG)
        FigureCanvasAgg(figure)  # attaches itself as figure.canvas
        holder["figure"] = figure
    return holder["figure"]


def render(holder: dict[str, Any], series: Series, width_px: int, height_px: int,
           conflict_axis: bool = True) -> np.ndarray:
    """Draw ``series`` into the holder's figure (Agg) and return its RGBA pixels; runs in a worker thread
    (one render at a time: the plot waits for one to return before it starts the next)."""
    figure = figure_of(holder)
    figure.set_size_inches(max(width_px, 200) / DPI, max(height_px, 150) / DPI)
    figure.clear()
    ax = figure.add_subplot(111)
    ax_conflict = ax.twinx() if conflict_axis else ax  # a fine-tune has no gradient conflicts to show
    for axis in {ax, ax_conflict}:
        axis.set_facecolor(DARK_BG)
        axis.tick_params(colors=TEXT, labelsize=7)
        for spine in axis.spines.values():
            spine.set_color("#808080")
    ax.set_xlabel("step", color=TEXT, fontsize=8)
    ax.set_ylabel("loss", color=TEXT, fontsize=8)
    if conflict_axis:
        ax_conflict.set_ylabel("conflict rate (dashed)", color="#ffb74d", fontsize=8)
        ax_conflict.set_ylim(0, 1)
    lines = []
    for key in sorted(series):
        steps, ys = series[key]
        target, style = (ax_conflict, "--") if is_conflict_key(key) else (ax, "-")
        lines += target.plot(steps, ys, linestyle=style, linewidth=1.8 if key == "loss" else 1.0,
                             label=metric_name(key))
    legend_rows = (len(lines) + 2) // 3
    height = max(height_px, 150)
    bottom = (34 + 11 * legend_rows) / height  # tick labels and "step" (~34 px), then ~11 px per legend row
    if lines:  # below the axes, three columns: curves stay readable however many meta labels there are
        figure.legend(lines, [line.get_label() for line in lines], fontsize=6, loc="lower center", ncol=3,
                      frameon=False, labelcolor=TEXT)
    figure.subplots_adjust(left=0.11, right=0.88, top=0.97, bottom=min(bottom, 0.6))
    canvas = figure.canvas
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


class LossPlot(QWidget):
    """``add(step, values)`` appends; a throttled render in a thread replaces the shown bitmap."""

    rendered = Signal()

    def __init__(self, parent: QWidget | None = None, redraw_ms: int = 500, conflict_axis: bool = True,
                 min_height: int = 200) -> None:
        super().__init__(parent)
        self.conflict_axis = conflict_axis
        self._figure: dict[str, Any] = {}  # {"figure": the Agg figure}, filled by the first render
        self.image = QLabel(self)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image.setMinimumHeight(min_height)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.image)
        self.series: Series = {}
        self._rendering = False
        self._again = False
        self._throttle = Throttle(self.redraw, redraw_ms, self)
        self.redraw()

    def clear(self) -> None:
        self.series.clear()
        self.redraw()

    def add(self, step: int, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            if (is_loss_key(key) or is_conflict_key(key)) and value == value:  # NaN-free
                steps, ys = self.series.setdefault(key, ([], []))
                steps.append(int(step))
                ys.append(float(value))
        self._throttle.request()

    def load(self, rows: Iterable[Mapping[str, float]]) -> None:
        """Fill from ``api.read_metrics(run)`` rows (a resumed run shows its whole history)."""
        self.series.clear()
        for row in rows:
            self.add(int(row.get("step", 0)), {k: v for k, v in row.items() if k != "step"})
        self.flush()

    def flush(self) -> None:
        self._throttle.flush()
        self.redraw()

    def redraw(self) -> None:
        if self._rendering:
            self._again = True
            return
        self._rendering, self._again = True, False
        snapshot = {k: (list(s), list(y)) for k, (s, y) in self.series.items()}
        size = self.image.size()
        start_worker(render, self._figure, snapshot, size.width(), size.height(), self.conflict_axis,
                     _connect={"returned": self._show, "errored": self._on_error})

    def _show(self, rgba: np.ndarray) -> None:
        height, width = rgba.shape[:2]
        image = QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()
        self.image.setPixmap(QPixmap.fromImage(image))
        self._finish()

    def _on_error(self, _exc: Exception) -> None:
        self._finish()

    def _finish(self) -> None:
        self._rendering = False
        self.rendered.emit()
        if self._again:
            self.redraw()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._throttle.request()
