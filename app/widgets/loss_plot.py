"""Live loss curves of a pre-training run: one line per meta label and branch, conflict rate on the right.

The engine's Metric keys are ``<branch>/loss/<meta label>``, ``<branch>/conflict_rate`` and ``loss``;
seeing each meta label's loss and how often their gradients conflict is what tells a user whether a
meta label helps. Redraws are throttled (matplotlib draws are tens of milliseconds each).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gcl_app.widgets.common import Throttle
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

DARK_BG = "#262930"  # napari's default dark theme background


def is_loss_key(key: str) -> bool:
    return key == "loss" or "/loss/" in key


def is_conflict_key(key: str) -> bool:
    return key.endswith("conflict_rate")


class LossPlot(QWidget):
    """A matplotlib canvas in the dock; ``add(step, values)`` appends, the redraw happens later."""

    def __init__(self, parent: QWidget | None = None, redraw_ms: int = 500) -> None:
        super().__init__(parent)
        self.figure = Figure(figsize=(4.0, 2.6), dpi=90, facecolor=DARK_BG, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setMinimumHeight(200)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.ax = self.figure.add_subplot(111)
        self.ax_conflict = self.ax.twinx()
        self.series: dict[str, tuple[list[int], list[float]]] = {}
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
        for ax in (self.ax, self.ax_conflict):
            ax.clear()
            ax.set_facecolor(DARK_BG)
            ax.tick_params(colors="#d0d0d0", labelsize=7)
            for spine in ax.spines.values():
                spine.set_color("#808080")
        self.ax.set_xlabel("step", color="#d0d0d0", fontsize=8)
        self.ax.set_ylabel("loss", color="#d0d0d0", fontsize=8)
        self.ax_conflict.set_ylabel("conflict rate", color="#ffb74d", fontsize=8)
        self.ax_conflict.yaxis.set_label_position("right")
        self.ax_conflict.yaxis.tick_right()
        self.ax_conflict.set_ylim(0, 1)
        for key in sorted(self.series):
            steps, ys = self.series[key]
            if is_conflict_key(key):
                self.ax_conflict.plot(steps, ys, linestyle="--", linewidth=1.0, label=key)
            else:
                self.ax.plot(steps, ys, linewidth=1.8 if key == "loss" else 1.0, label=key)
        handles = self.ax.get_legend_handles_labels()
        handles_c = self.ax_conflict.get_legend_handles_labels()
        if handles[0] or handles_c[0]:
            self.ax.legend(handles[0] + handles_c[0], handles[1] + handles_c[1], fontsize=6, loc="upper right",
                           facecolor=DARK_BG, labelcolor="#d0d0d0", framealpha=0.6)
        self.canvas.draw_idle()
