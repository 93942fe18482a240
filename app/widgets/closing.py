"""Closing a window while training runs: say what is running and what would be lost, then stop it properly.

Why: napari closed the window with only its generic confirm, and the dying window killed the training
child: pre-training lost the steps since its last checkpoint, a fine-tuned model just written was never
registered in the project. Now the close waits for the cancel path (pre-training writes a checkpoint,
fine-tuning saves the model trained so far), lets the panels register what was written, and only then closes.
A job that has not stopped after its grace is killed; the prompt says so, in terms of its real checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QEvent, QEventLoop, QObject, QTimer
from qtpy.QtWidgets import QApplication, QMessageBox, QWidget

GUARD_ATTR = "_gcl_close_guard"


def running_panels(panels: list[Any]) -> list[Any]:
    return [panel for panel in panels if getattr(panel, "runner", None) is not None and panel.runner.running]


def close_question(panels: list[Any]) -> str:
    """What the close prompt says: each running job, what stopping keeps and what it loses."""
    lines = [panel.job_summary() for panel in running_panels(panels)]
    return "\n\n".join(lines) + "\n\nStop the job(s) and close?"


def stop_jobs(panels: list[Any], grace_s: float | None = None) -> None:
    """Cancel every running job, wait (events still processed) until each has finished and been registered
    by its panel, or kill it after its grace."""
    running = running_panels(panels)
    for panel in running:
        panel.closing = True  # no whole-volume preview after the model is saved: the window is going
        panel.runner.cancel()
    deadline = time.monotonic() + (grace_s if grace_s is not None else
                                   max((p.runner.grace_s for p in running), default=0.0))
    loop = QEventLoop()
    while any(p.runner.running for p in running) and time.monotonic() < deadline:
        loop.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.02)
    for panel in running:
        if panel.runner.running:
            panel.runner.kill()
    QApplication.processEvents()  # the finished/failed events of what just stopped reach the panels


class CloseGuard(QObject):
    """An event filter on a napari main window: a close with a running GCL job asks, then stops it properly."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.watched = window
        self.panels: list[Any] = []
        self.ask: Callable[[str, str], bool] = self._ask  # tests replace it (a modal box would block them)

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self.watched, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Close and watched is getattr(self, "watched", None):
            self.panels = [p for p in self.panels if _alive(p)]
            if running_panels(self.panels):
                if not self.ask("Training is running", close_question(self.panels)):
                    event.ignore()
                    return True
                stop_jobs(self.panels)
        return False


def _alive(panel: Any) -> bool:
    try:
        panel.objectName()
    except RuntimeError:  # deleted on the C++ side
        return False
    return True


def guard_window(panel: Any) -> CloseGuard | None:
    """Register ``panel`` with its top-level window's guard (made on first use); None if not docked yet."""
    window = panel.window()
    if window is None or window is panel:
        return None
    guard = getattr(window, GUARD_ATTR, None)
    if guard is None:
        guard = CloseGuard(window)
        window.installEventFilter(guard)
        setattr(window, GUARD_ATTR, guard)
    if panel not in guard.panels:
        guard.panels.append(panel)
    return guard


def guard_when_docked(panel: Any) -> None:
    """napari docks the panel after creating it: register with the window's guard once it is docked."""
    timer = QTimer(panel)
    timer.setSingleShot(True)
    timer.timeout.connect(lambda: guard_window(panel))
    timer.start(0)
