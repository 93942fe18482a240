"""Which slice to paint next: the unpainted slices ranked by how much painting one is expected to help.

One pass of the network over the volume at its own resolution gives two things per slice:

* **where the structures are**: the slices on which the model sees foreground, from the first to the last
  (its *extent*); a slice outside it holds nothing to paint;
* **uncertainty**: the model's mean per-pixel entropy on the slice (0 = sure everywhere, 1 = uniform over the
  classes), over the pixels the model or their neighbours call foreground, so a slice full of air does not
  look sure just because most of it is background.

Strategies (``strategy``):

* ``"distance"``: the slice farthest from every painted slice and from the ends of the extent (which count as
  painted just outside it): the middle of the largest gap, so the painted slices stay evenly spread over the
  structures. On the annotation benchmark this spread did better than uncertainty-driven choices at 2-5
  painted slices (benchmarks/README.md), so it is the default;
* ``"uncertainty"``: the most uncertain slice inside the extent;
* ``"uncertainty_distance"``: uncertainty times a diversity weight, min(1, distance / half the even spacing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gcl_engine.errors import ConfigError, InputError
from gcl_engine.inference.segmenter import Segmenter
from gcl_engine.io.volume import Volume
from gcl_engine.runtime import CancelToken

STRATEGIES = ("distance", "uncertainty", "uncertainty_distance")
DEFAULT_STRATEGY = "distance"


@dataclass(frozen=True)
class SliceScore:
    slice: int
    score: float  # what the ranking sorts by, larger first
    uncertainty: float  # mean normalised entropy over the slice's foreground region, in [0, 1]
    distance: float  # slices to the nearest painted slice or end of the extent (inf when there is neither)


@dataclass(frozen=True)
class SliceSignals:
    uncertainty: np.ndarray  # (n,) in [0, 1]
    foreground: np.ndarray  # (n,) bool: the model sees foreground on the slice


def slice_signals(segmenter: Segmenter, volume: Volume, cancel: CancelToken | None = None) -> SliceSignals:
    """Per slice: mean normalised entropy over its foreground region, and whether it holds foreground."""
    slices, _ = segmenter.network_inputs(volume)
    k = max(2, len(segmenter.class_names))
    uncertainty = np.zeros(slices.shape[0], dtype=np.float64)
    foreground = np.zeros(slices.shape[0], dtype=bool)
    for i, soft in segmenter.softmax_batches(slices, cancel):
        entropy = -(soft * torch.log(soft.clamp_min(1e-8))).sum(1) / np.log(k)  # (b, S, S)
        fg = 1.0 - soft[:, 0]
        region = torch.nn.functional.max_pool2d(fg.unsqueeze(1), 9, stride=1, padding=4)[:, 0] > 0.1
        for j in range(soft.shape[0]):
            chosen = entropy[j][region[j]]
            uncertainty[i + j] = float(chosen.mean()) if chosen.numel() else float(entropy[j].mean())
            foreground[i + j] = bool((fg[j] > 0.5).any())
    return SliceSignals(uncertainty, foreground)


def distances_to_painted(n: int, painted: Sequence[int]) -> np.ndarray:
    if not painted:
        return np.full(n, np.inf)
    marks = np.asarray(sorted(set(painted)))
    idx = np.arange(n)
    return np.abs(idx[:, None] - marks[None, :]).min(axis=1).astype(np.float64)


def extent_of(foreground: np.ndarray, painted: Sequence[int]) -> tuple[int, int]:
    """First and last slice holding predicted foreground or a painted slice (the whole volume if none)."""
    held = sorted({*np.flatnonzero(foreground).tolist(), *[int(k) for k in painted]})
    return (held[0], held[-1]) if held else (0, len(foreground) - 1)


def rank(uncertainty: np.ndarray, painted: Sequence[int], strategy: str = "default",
         foreground: np.ndarray | None = None) -> list[SliceScore]:
    """Unpainted slices, best first; slices outside the extent (no foreground, nothing painted there) last."""
    strategy = DEFAULT_STRATEGY if strategy == "default" else strategy
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown suggestion strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    n = uncertainty.shape[0]
    lo, hi = extent_of(foreground if foreground is not None else np.ones(n, bool), painted)
    dist = distances_to_painted(n, [*painted, lo - 1, hi + 1])
    inside = (np.arange(n) >= lo) & (np.arange(n) <= hi)
    spacing = (hi - lo + 1) / (len(set(painted)) + 1)  # the gap evenly painted slices would leave
    diversity = np.minimum(1.0, dist / max(1.0, spacing / 2))
    score = {"uncertainty": uncertainty, "distance": dist, "uncertainty_distance": uncertainty * diversity}[strategy]
    score = np.where(inside, score, -1.0 + 1.0 / (2.0 + dist))  # outside: after every slice inside, nearest first
    done = set(painted)
    order = sorted((k for k in range(n) if k not in done), key=lambda k: (-score[k], k))
    return [SliceScore(int(k), float(score[k]), float(uncertainty[k]), float(dist[k])) for k in order]


def rank_slices(model: str | Segmenter, image: Volume, painted: Sequence[int], strategy: str = "default",
                top: int | None = None, cancel: CancelToken | None = None) -> list[SliceScore]:
    """Rank the unpainted slices of ``image`` (slices along the model's slicing axis) for painting next."""
    segmenter = Segmenter.load(model) if not isinstance(model, Segmenter) else model
    n = image.array.shape[segmenter.preprocess.axis] if image.array.ndim == 3 else 0
    bad = [int(k) for k in painted if not 0 <= int(k) < n]
    if bad:
        raise InputError(image.meta.source, f"painted slice indices {bad} outside 0..{n - 1}")
    signals = slice_signals(segmenter, image, cancel)
    ranking = rank(signals.uncertainty, painted, strategy, signals.foreground)
    return ranking[:top] if top else ranking
