"""Measuring the Qt event loop: a 10 ms timer that records every gap between its ticks.

When the loop stalls, a sampler thread records what the UI thread was doing, so a long gap comes with
the code that caused it. Used by ``ui_responsiveness.py`` and the soak suite, which print the figures;
no test asserts on them (a loaded machine stretches every gap).
"""

from __future__ import annotations

import gc
import statistics
import sys
import threading
import time
import traceback
from collections import Counter

from qtpy.QtCore import QObject, QTimer

SAMPLE_AFTER_S = 0.06


class StallMonitor(QObject):
    """While running, ``gaps_ms`` holds the time between consecutive ticks of a ``interval_ms`` timer."""

    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self.gaps_ms: list[float] = []
        self._last = 0.0
        self._running = False
        self._stacks: list[str] = []
        self._main = threading.main_thread().ident
        self.longest_gc_ms = 0.0
        self._gc_start = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    @property
    def ticks(self) -> int:
        return len(self.gaps_ms)

    @property
    def max_gap_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the gaps (q in 0..100)."""
        if len(self.gaps_ms) < 2:
            return self.max_gap_ms
        return statistics.quantiles(self.gaps_ms, n=100, method="inclusive")[min(max(int(q), 1), 99) - 1]

    def share_over(self, limit_ms: float) -> float:
        return sum(g > limit_ms for g in self.gaps_ms) / max(len(self.gaps_ms), 1)

    def start(self) -> None:
        self._last = time.perf_counter()
        self._running = True
        self._timer.start()
        gc.callbacks.append(self._on_gc)
        threading.Thread(target=self._sample, daemon=True).start()

    def stop(self) -> None:
        self._timer.stop()
        self._running = False
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, _info: dict) -> None:
        """Python's cyclic collector runs on whichever thread allocates: a long pass is a stall too."""
        now = time.perf_counter()
        if phase == "start":
            self._gc_start = now
        elif self._gc_start:
            self.longest_gc_ms = max(self.longest_gc_ms, (now - self._gc_start) * 1000.0)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps_ms.append((now - self._last) * 1000.0)
        self._last = now

    def _sample(self) -> None:
        while self._running:
            time.sleep(0.02)
            if time.perf_counter() - self._last > SAMPLE_AFTER_S:
                frame = sys._current_frames().get(self._main)
                if frame is not None:
                    self._stacks.append("".join(traceback.format_stack(frame)[-8:]))

    def culprit(self) -> str:
        """The UI thread's most frequent stack while stalled (empty when it never stalled past 60 ms)."""
        if not self._stacks:
            return ""
        stack, count = Counter(self._stacks).most_common(1)[0]
        return f"{count} of {len(self._stacks)} sample(s):\n{stack}"

    def report(self) -> str:
        text = (f"longest event-loop gap {self.max_gap_ms:.0f} ms (longest garbage-collector pass "
                f"{self.longest_gc_ms:.0f} ms)")
        culprit = self.culprit()
        return text + (f"; the UI thread was here ({culprit}" if culprit else "")
