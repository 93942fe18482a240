"""Measuring the Qt event loop: a 10 ms timer that records the longest gap between its ticks.

When the loop stalls, a sampler thread records what the UI thread was doing, so a failing
responsiveness test names the culprit instead of only a number.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import traceback
from collections import Counter

from qtpy.QtCore import QObject, QTimer

SAMPLE_AFTER_S = 0.06


class StallMonitor(QObject):
    """While running, ``max_gap_ms`` is the longest time the event loop went without serving the timer."""

    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self.max_gap_ms = 0.0
        self.ticks = 0
        self._last = 0.0
        self._running = False
        self._stacks: list[str] = []
        self._main = threading.main_thread().ident
        self.longest_gc_ms = 0.0
        self._gc_start = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

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
        self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1000.0)
        self._last = now
        self.ticks += 1

    def _sample(self) -> None:
        while self._running:
            time.sleep(0.02)
            if time.perf_counter() - self._last > SAMPLE_AFTER_S:
                frame = sys._current_frames().get(self._main)
                if frame is not None:
                    self._stacks.append("".join(traceback.format_stack(frame)[-8:]))

    def report(self) -> str:
        """The assertion message: the longest gap and the UI thread's most frequent stack while stalled."""
        text = (f"the event loop stalled for {self.max_gap_ms:.0f} ms (longest garbage-collector pass "
                f"{self.longest_gc_ms:.0f} ms)")
        if self._stacks:
            stack, count = Counter(self._stacks).most_common(1)[0]
            text += f"; the UI thread was here ({count} sample(s)):\n{stack}"
        return text
