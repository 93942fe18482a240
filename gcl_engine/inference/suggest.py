"""Which slice to paint next: the unpainted slices ranked by how much painting one is expected to help.

Two signals, both cheap (one pass of the network over the volume at its own resolution):

* **uncertainty**: the model's mean per-pixel entropy on the slice (0 = sure everywhere, 1 = uniform over
  the classes), over the pixels the model or its neighbours call foreground, so a slice full of air does not
  look sure just because most of it is background;
* **diversity**: the distance to the nearest painted slice, relative to the spacing that evenly painted
  slices would have: a slice next to a painted one teaches little that its neighbour did not.

Strategies (``strategy``): ``"uncertainty"``, ``"distance"`` (farthest from what is painted: evenly spaced
painting), ``"uncertainty_distance"`` (their product), ``"default"`` (the strategy the annotation benchmark
chose; see the README).
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

STRATEGIES = ("uncertainty", "distance", "uncertainty_distance")
DEFAULT_STRATEGY = "uncertainty_distance"


@dataclass(frozen=True)
class SliceScore:
    slice: int
    score: float  # what the ranking sorts by, larger first
    uncertainty: float  # mean normalised entropy over the slice's foreground region, in [0, 1]
    distance: float  # slices to the nearest painted slice (inf when none is painted)


def slice_uncertainty(segmenter: Segmenter, volume: Volume, cancel: CancelToken | None = None) -> np.ndarray:
    """(n,) mean normalised entropy of each slice's prediction, over its foreground region."""
    slices, _ = segmenter.network_inputs(volume)
    k = max(2, len(segmenter.class_names))
    out = np.zeros(slices.shape[0], dtype=np.float64)
    for i, soft in segmenter.softmax_batches(slices, cancel):
        entropy = -(soft * torch.log(soft.clamp_min(1e-8))).sum(1) / np.log(k)  # (b, S, S)
        region = torch.nn.functional.max_pool2d((1.0 - soft[:, 0]).unsqueeze(1), 9, stride=1, padding=4)[:, 0]
        region = region > 0.1  # foreground somewhere near: the boundary band and the objects
        for j in range(soft.shape[0]):
            chosen = entropy[j][region[j]]
            out[i + j] = float(chosen.mean()) if chosen.numel() else float(entropy[j].mean())
    return out


def distances_to_painted(n: int, painted: Sequence[int]) -> np.ndarray:
    if not painted:
        return np.full(n, np.inf)
    marks = np.asarray(sorted(set(painted)))
    idx = np.arange(n)
    return np.abs(idx[:, None] - marks[None, :]).min(axis=1).astype(np.float64)


def rank(uncertainty: np.ndarray, painted: Sequence[int], strategy: str = "default") -> list[SliceScore]:
    """Unpainted slices, best first."""
    strategy = DEFAULT_STRATEGY if strategy == "default" else strategy
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown suggestion strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    n = uncertainty.shape[0]
    dist = distances_to_painted(n, painted)
    spacing = n / (len(set(painted)) + 1)  # the gap evenly painted slices would leave
    diversity = np.minimum(1.0, dist / max(1.0, spacing / 2)) if painted else np.ones(n)
    score = {"uncertainty": uncertainty, "distance": np.where(np.isinf(dist), 0.0, dist),
             "uncertainty_distance": uncertainty * diversity}[strategy]
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
    ranking = rank(slice_uncertainty(segmenter, image, cancel), painted, strategy)
    return ranking[:top] if top else ranking
