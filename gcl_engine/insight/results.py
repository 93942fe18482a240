"""The insight tools' results as plain data: what the GUI holds and shows on its UI thread.

Kept apart from the modules that compute them (embedding, projection, calibration), so reading a result,
formatting its sentence or finding the point under a click never enters long-work code.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from PIL import Image

FIXED_COLUMNS = ("volume_id", "source", "slice", "x", "y")
BRANCHES = {"img": "image branch", "pix": "pixel branch"}


@dataclass
class FolderMap:
    """Points of the map and what each is; ``labels[name][i]`` is point i's value of a colouring column."""

    volume_id: list[str]
    source: list[str]
    slice: np.ndarray  # (n,) int
    xy: np.ndarray  # (n, 2) float32
    labels: dict[str, list[str]] = field(default_factory=dict)  # "volume" first, then the meta labels
    method: str = ""
    step: int = 0
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.volume_id)

    def colour_choices(self) -> list[str]:
        return list(self.labels)

    def to_csv(self) -> str:
        names = [n for n in self.labels if n != "volume"]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([*FIXED_COLUMNS, *names])
        for i in range(len(self)):
            writer.writerow([self.volume_id[i], self.source[i], int(self.slice[i]), f"{self.xy[i, 0]:.5g}",
                             f"{self.xy[i, 1]:.5g}", *(self.labels[n][i] for n in names)])
        return buffer.getvalue()


@dataclass
class MapImage:
    rgba: np.ndarray  # (H, W, 4) uint8
    pixels: np.ndarray  # (n, 2) float: (column, row) of each point in the picture
    colours: dict[str, str]  # category -> colour, as the legend shows them

    def png_bytes(self) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(self.rgba, "RGBA").save(buffer, format="PNG")
        return buffer.getvalue()

    def nearest(self, column: float, row: float, within_px: float = 12.0) -> int | None:
        """Index of the point drawn nearest to a pixel, or None when none lies within ``within_px``."""
        if not len(self.pixels):
            return None
        d2 = ((self.pixels - np.array([column, row])) ** 2).sum(axis=1)
        best = int(np.argmin(d2))
        return best if d2[best] <= within_px ** 2 else None


@dataclass
class ConflictMatrix:
    branch: str  # "img" | "pix"
    labels: list[str]
    cosine: np.ndarray  # (M, M) mean cosine over the steps that logged the pair; 1 on the diagonal
    conflict_rate: np.ndarray  # (M, M) share of those steps with a negative cosine; 0 on the diagonal
    steps: np.ndarray  # (M, M) how many steps logged the pair

    @property
    def title(self) -> str:
        return BRANCHES.get(self.branch, self.branch)

    def worst_pair(self) -> tuple[str, str, float, float] | None:
        """(a, b, conflict rate, mean cosine) of the pair that fought most often; None with < 2 labels."""
        m = len(self.labels)
        pairs = [(self.conflict_rate[i, j], -self.cosine[i, j], i, j) for i in range(m) for j in range(i + 1, m)
                 if self.steps[i, j] > 0]
        if not pairs:
            return None
        rate, neg_cos, i, j = max(pairs)
        return self.labels[i], self.labels[j], float(rate), float(-neg_cos)

    def sentence(self) -> str:
        """One line of plain words, e.g. "position fights subject in 54% of steps"."""
        worst = self.worst_pair()
        if worst is None:
            return f"{self.title}: only one meta label, nothing to fight over."
        a, b, rate, cos = worst
        n = int(self.steps[self.labels.index(a), self.labels.index(b)])
        if rate == 0:
            return f"{self.title}: no pair of meta labels fought in any of {n} steps (every cosine ≥ 0)."
        return (f"{self.title}: {a} fights {b} in {rate:.0%} of steps "
                f"(mean cosine {cos:+.2f} over {n} steps).")


@dataclass
class FitVerdict:
    score: float
    threshold: float
    verdict: Literal["inside", "outside"]
    outside_share: float  # share of the scan's slices beyond the threshold
    n_slices: int
    step: int
    percentile: float

    @property
    def inside(self) -> bool:
        return self.verdict == "inside"

    def line(self) -> str:
        return (f"score {self.score:.4f}  threshold {self.threshold:.4f}  verdict {self.verdict} "
                f"({self.outside_share:.0%} of {self.n_slices} slices beyond the threshold; checkpoint step "
                f"{self.step}, threshold = {self.percentile:g}th percentile of the pool's held-out scans)")

    def to_dict(self) -> dict:
        return asdict(self)
