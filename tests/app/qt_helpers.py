"""Measuring the Qt event loop: a 10 ms timer that records the longest gap between its ticks."""

from __future__ import annotations

import time

from qtpy.QtCore import QObject, QTimer


class StallMonitor(QObject):
    """While running, ``max_gap_ms`` is the longest time the event loop went without serving the timer."""

    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self.max_gap_ms = 0.0
        self.ticks = 0
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1000.0)
        self._last = now
        self.ticks += 1
