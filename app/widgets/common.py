"""Small Qt helpers the panels share: throttled updates, a progress bar with ETA, a layer picker, status.

Training emits an event per step; redrawing on each would starve the event loop, so every visible
update goes through :class:`Throttle` (at most a few per second, the last value always shown).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from gcl_app.layers import ROLE_KEY, UNCERTAINTY_ROLE
from qtpy.QtCore import QObject, QTimer, Signal
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QWidget
from superqt.utils import create_worker

from gcl_engine import api


def start_worker(fn: Callable[..., Any], *args: Any, _connect: dict[str, Callable[..., Any]]) -> Any:
    """``superqt.utils.create_worker`` whose callbacks are all disconnected, on the UI thread, once it finished.

    Found by the GUI reliability tests (a closed standalone window stayed alive, at random): a callback
    connected to a worker's signal (a lambda, a closure) was at times kept alive by PySide after the worker
    and the panel that started it were gone, pinning what it captured: the panel, its window, the viewer and
    every layer (likely cause: the worker's signal object is freed on whichever thread drops the last
    reference, sometimes the pool's). ``finished`` arrives on the UI thread after ``returned``/``errored``;
    disconnecting there released the callbacks in every run since. The worker starts only once that is
    connected: started outside an event loop (a panel's constructor), a quick one could finish first.
    """
    worker = create_worker(fn, *args, _connect=_connect, _start_thread=False)
    signals = worker.signals
    names = {*_connect, "finished"}

    def release() -> None:
        with warnings.catch_warnings():  # PySide warns about a signal whose receiver was deleted before
            warnings.simplefilter("ignore", RuntimeWarning)
            for name in names:
                try:
                    getattr(signals, name).disconnect()
                except (RuntimeError, TypeError):  # the signal object is already gone
                    pass

    signals.finished.connect(release)
    worker.start()
    return worker


class EventRelay(QObject):
    """An engine ``on_event`` callback for work in a worker thread: each event reaches the UI thread as a signal.

    The relay lives on the UI thread, so ``event`` emitted from the worker is queued to the UI's event loop;
    an event sent after the panel (and the relay) was deleted is dropped, never raised in the worker.
    """

    event = Signal(object)

    def __call__(self, event: api.Event) -> None:
        try:
            self.event.emit(event)
        except RuntimeError:  # the relay's C++ side is gone (panel closed): nobody is listening
            pass


class Throttle(QObject):
    """Call ``fn`` at most once per ``interval_ms``; requests in between coalesce into one later call."""

    def __init__(self, fn: Callable[[], None], interval_ms: int = 250, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._fire)
        self._pending = False

    def request(self) -> None:
        if self._timer.isActive():
            self._pending = True
            return
        self._fn()
        self._timer.start()

    def flush(self) -> None:
        """Run a pending call now (e.g. when the job ends, so the final state is shown)."""
        if self._pending:
            self._timer.stop()
            self._fire()

    def _fire(self) -> None:
        if self._pending:
            self._pending = False
            self._fn()
            self._timer.start()


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min left"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s left"
    return f"{seconds} s left"


class EtaProgress(QWidget):
    """A progress bar plus a one-line text (stage, step, ETA), updated at most 5 times a second."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.text = QLabel("", self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 2)
        layout.addWidget(self.text, 3)
        self._last: api.Progress | None = None
        self._throttle = Throttle(self._show, 200, self)

    def set_progress(self, event: api.Progress) -> None:
        self._last = event
        self._throttle.request()

    def busy(self, message: str) -> None:
        """An indeterminate bar while work of unknown length runs (reading, predicting)."""
        self.bar.setRange(0, 0)
        self.text.setText(message)

    def done(self, message: str, complete: bool = True) -> None:
        """Work ended: a full bar when it completed, an empty one when it failed or was cancelled."""
        self._throttle.flush()
        self._last = None
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if complete else 0)
        self.text.setText(message)

    def _show(self) -> None:
        event = self._last
        if event is None:
            return
        total = max(event.total, 0)
        self.bar.setRange(0, total)
        self.bar.setValue(min(event.done, total) if total else 0)
        parts = [f"{event.stage} {event.done}/{event.total}" if total else event.stage]
        if event.message:
            parts.append(event.message)
        eta = format_eta(event.eta_s)
        if eta:
            parts.append(eta)
        self.text.setText(" · ".join(parts))


class StatusLine(QLabel):
    """Where a panel says what happened (errors in red, selectable so users can copy them)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(self.textInteractionFlags() | _selectable())

    def info(self, text: str) -> None:
        self.setStyleSheet("")
        self.setText(text)

    def error(self, text: str) -> None:
        self.setStyleSheet("color: #ff6b6b;")
        self.setText(text)

    @property
    def is_error(self) -> bool:
        return "ff6b6b" in self.styleSheet()


def _selectable() -> Any:
    from qtpy.QtCore import Qt

    return Qt.TextInteractionFlag.TextSelectableByMouse


class LayerChooser(QComboBox):
    """A combo box of the viewer's layers of one kind, kept current as layers come and go."""

    def __init__(self, viewer: Any, kind: str, parent: QWidget | None = None,
                 accept: Callable[[Any], bool] | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.kind = kind
        self._accept = accept or (lambda layer: True)
        for name in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, name).connect(self.refresh)
        self.refresh()

    def layers(self) -> list[Any]:
        return [layer for layer in self.viewer.layers
                if type(layer).__name__.lower() == self.kind and not _derived(layer) and self._accept(layer)]

    def refresh(self, *_: Any) -> None:
        current = self.currentText()
        names = [layer.name for layer in self.layers()]
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        if current in names:
            self.setCurrentText(current)
        self.blockSignals(False)
        if current not in names:
            self.currentIndexChanged.emit(self.currentIndex())

    def layer(self) -> Any | None:
        name = self.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def disconnect_viewer(self) -> None:
        for name in ("inserted", "removed", "reordered"):
            getattr(self.viewer.layers.events, name).disconnect(self.refresh)


def _derived(layer: Any) -> bool:
    """A layer GCL Studio derived from a scan that is not itself something to annotate or export: the model's
    uncertainty map (an image layer, so it would otherwise be offered as a scan)."""
    metadata = getattr(layer, "metadata", None) or {}
    return metadata.get(ROLE_KEY) == UNCERTAINTY_ROLE
