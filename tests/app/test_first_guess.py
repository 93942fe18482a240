"""The instant first guess: contour interpolation between painted slices, computed off the UI thread."""

from __future__ import annotations

import numpy as np
from gcl_app.widgets.first_guess import FirstGuess, interpolation_guess


def _painted(n: int = 12) -> np.ndarray:
    labels = np.zeros((n, 32, 32), dtype=np.uint8)
    labels[2, 8:16, 8:16] = 1
    labels[8, 12:24, 12:24] = 1
    return labels


def test_the_guess_fills_only_the_slices_between_painted_ones():
    guess = interpolation_guess(_painted(), (1.0, 1.0, 2.0))
    assert guess.painted == (2, 8) and guess.slices == (3, 4, 5, 6, 7)
    areas = [int((m == 1).sum()) for m in guess.masks]
    assert all(a > 0 for a in areas) and areas[0] < areas[-1]  # from the 8x8 square towards the 12x12 one
    centres = [float(np.argwhere(m == 1)[:, 0].mean()) for m in guess.masks]
    assert centres == sorted(centres) and 11.5 < centres[0] and centres[-1] < 17.5  # it moves between them


def test_one_painted_slice_gives_no_guess():
    labels = np.zeros((6, 16, 16), dtype=np.uint8)
    labels[3, 4:8, 4:8] = 2
    guess = interpolation_guess(labels, (1.0, 1.0, 1.0))
    assert guess.slices == () and guess.masks.shape == (0, 16, 16)


def test_requests_while_one_runs_coalesce_to_the_newest(qtbot):
    runner = FirstGuess()
    got = []
    runner.ready.connect(got.append)
    first = _painted()
    newer = _painted()
    newer[5, 0:4, 0:4] = 1  # a third painted slice
    runner.request(first, (1.0, 1.0, 1.0))
    runner.request(newer, (1.0, 1.0, 1.0))
    qtbot.waitUntil(lambda: bool(got) and not runner._running, timeout=20_000)
    assert got[-1].painted == (2, 5, 8)
