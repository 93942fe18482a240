"""The simulated annotator: which slice it paints next, and what it paints there (a whole slice or scribbles).

Orders are nested (the user never unpaints): round r paints one more slice than round r - 1.
* ``even``: farthest-point order inside the reference's foreground range (its first and last slice holding a
  class, with virtual painted slices just outside): the middle first, then the middles of the largest gaps,
  so every prefix is as evenly spread as a nested order allows. The first slice moves a little with the seed.
* ``sequential``: from the first slice of the even order onwards, one neighbour after the other (what
  "next unannotated slice" gives), wrapping to the slices before it at the end of the range.
* ``suggest``: the first slice of the even order, then whatever the method suggests.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

ORDERS = ("even", "sequential", "suggest")


def foreground_range(reference: np.ndarray) -> tuple[int, int]:
    held = np.flatnonzero(reference.reshape(reference.shape[0], -1).any(axis=1))
    return (int(held[0]), int(held[-1])) if held.size else (0, reference.shape[0] - 1)


def first_slice(reference: np.ndarray, seed: int) -> int:
    lo, hi = foreground_range(reference)
    u = 0.5 + 0.16 * (((seed * 0.6180339887) % 1.0) - 0.5)  # within [0.42, 0.58] of the range
    return int(round(lo + u * (hi - lo)))


def next_even(reference: np.ndarray, painted: list[int]) -> int:
    """The middle of the largest gap between painted slices and the foreground range's virtual ends."""
    lo, hi = foreground_range(reference)
    marks = sorted({lo - 1, hi + 1, *painted})
    best, choice = -1, None
    for a, b in zip(marks[:-1], marks[1:], strict=True):
        if b - a >= 2 and b - a > best:
            best, choice = b - a, (a + b) // 2
    if choice is None:  # the whole range is painted: the nearest unpainted slice outside it
        free = [k for k in range(reference.shape[0]) if k not in painted]
        choice = min(free, key=lambda k: min(abs(k - lo), abs(k - hi)))
    return int(choice)


def next_sequential(reference: np.ndarray, painted: list[int]) -> int:
    lo, hi = foreground_range(reference)
    start = painted[0]
    for k in [*range(start + 1, hi + 1), *range(start - 1, lo - 1, -1), *range(reference.shape[0])]:
        if k not in painted:
            return int(k)
    raise ValueError("every slice is painted")


def scribble_slice(reference_slice: np.ndarray, unknown: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """What a scribbling annotator leaves on one slice: strokes along the middle of every region.

    For the background and each class, the ridge of its distance map (pixels at least 2 px inside that are a
    local maximum of the distance to the region's edge: a skeleton-like line), thickened by one pixel and kept
    away from the edge, cut into connected pieces; pieces are taken in random order, each region getting a
    share of ``share`` x the slice's pixels (background a third of the total, classes the rest by
    sqrt(area), at least one piece each). Every other pixel is ``unknown``.
    """
    out = np.full(reference_slice.shape, unknown, dtype=np.int64)
    budget = share * reference_slice.size
    classes = [int(c) for c in np.unique(reference_slice) if c != 0]
    areas = {c: float((reference_slice == c).sum()) for c in classes}
    total_sqrt = sum(np.sqrt(a) for a in areas.values()) or 1.0
    shares = {0: budget / 3 if classes else budget}
    for c in classes:
        shares[c] = (2 * budget / 3) * np.sqrt(areas[c]) / total_sqrt
    for c, allowance in shares.items():
        strokes = _strokes(reference_slice == c)
        pieces, n = ndimage.label(strokes, structure=np.ones((3, 3), bool))
        if n == 0:
            continue
        used = 0
        for piece in rng.permutation(n) + 1:
            where = pieces == piece
            size = int(where.sum())
            if used and used + size > allowance:
                continue
            if size > allowance:  # one piece too large: keep the part of it nearest its start
                idx = np.flatnonzero(where.ravel())[: max(1, int(allowance))]
                where = np.zeros(where.size, bool)
                where[idx] = True
                where = where.reshape(reference_slice.shape)
                size = int(where.sum())
            out[where] = c
            used += size
            if used >= allowance:
                break
    return out


def _strokes(region: np.ndarray) -> np.ndarray:
    if not region.any():
        return region
    dist = ndimage.distance_transform_edt(region)
    ridge = (dist >= 2) & (dist == ndimage.maximum_filter(dist, size=3))
    if not ridge.any():  # a thin region: its most interior pixels
        ridge = dist >= max(1.0, float(dist.max()))
    return ndimage.binary_dilation(ridge) & (dist >= 1.5 if dist.max() >= 2 else region)
