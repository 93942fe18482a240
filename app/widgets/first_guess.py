"""An instant first guess: the contour interpolation between painted slices, before any network exists.

As soon as two slices hold a class, the slices between them can show the shape-based interpolation
(``api.interpolate_volume``, what ``gcl interpolate`` writes) in the preview layer, marked as interpolation,
until the network's first preview replaces it. It takes well under a second on a sample scan, but it is still
run in a thread worker, and requests while one runs coalesce to the newest annotations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gcl_app.widgets.common import start_worker
from qtpy.QtCore import QObject, Signal

from gcl_engine import api


@dataclass(frozen=True)
class Guess:
    """Interpolated masks for the slices strictly between painted slices (the painted ones are the user's)."""

    slices: tuple[int, ...]
    masks: np.ndarray  # (len(slices), H, W)
    painted: tuple[int, ...]


def interpolation_guess(labels: np.ndarray, spacing: Sequence[float]) -> Guess:
    """The first guess of a (k, j, i) annotation volume of ITK ``spacing``; no slices when fewer than two
    slices are painted."""
    filled, painted = api.interpolate_volume(labels, spacing, axis=0)
    if len(painted) < 2:
        return Guess((), np.zeros((0, *labels.shape[1:]), dtype=np.uint8), tuple(painted))
    lo, hi, done = painted[0], painted[-1], set(painted)
    between = tuple(k for k in range(lo + 1, hi) if k not in done)
    masks = filled[list(between)] if between else np.zeros((0, *labels.shape[1:]), dtype=filled.dtype)
    return Guess(between, masks, tuple(painted))


class FirstGuess(QObject):
    """Runs :func:`interpolation_guess` off the UI thread; ``ready`` carries the newest finished guess."""

    ready = Signal(object)  # Guess
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running = False
        self._queued: tuple[np.ndarray, tuple[float, ...]] | None = None

    def request(self, labels: np.ndarray, spacing: Sequence[float]) -> None:
        """Guess from a copy of ``labels`` (the layer may change while the worker reads)."""
        self._queued = (np.array(labels, copy=True), tuple(float(s) for s in spacing))
        if not self._running:
            self._start()

    def _start(self) -> None:
        if self._queued is None:
            return
        labels, spacing = self._queued
        self._queued = None
        self._running = True
        start_worker(interpolation_guess, labels, spacing,
                     _connect={"returned": self._done, "errored": self._error})

    def _done(self, guess: Guess) -> None:
        self._running = False
        if self._queued is None:  # a newer request supersedes this result
            self.ready.emit(guess)
        self._start()

    def _error(self, exc: Exception) -> None:
        self._running = False
        self.failed.emit(f"First guess failed: {exc}")
        self._start()
