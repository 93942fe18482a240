"""Settings of the insight jobs (the map of the folder and the run report), as frozen dataclasses.

They travel as JSON like the training configs, so the GUI can start them in a child process
(``api.job_command("map", ...)``) exactly as the CLI runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gcl_engine.errors import ConfigError

PROJECTIONS = ("auto", "pca", "tsne")
TSNE_LIMIT = 5000  # "auto" uses t-SNE up to this many slices, PCA beyond (t-SNE's cost grows as n log n)


@dataclass(frozen=True)
class MapConfig:
    """``gcl map``: embed the run's folder with its last checkpoint, project to 2D, write CSV + PNG."""

    run: str = ""
    out: str | None = None  # default: RUN/insight
    method: Literal["auto", "pca", "tsne"] = "auto"
    max_slices: int = 3000  # 0: every slice; otherwise spread evenly, every volume keeps at least one
    colour_by: str = "volume"  # "volume" or a meta label (subject, position, phase, series, csv:...)
    device: str = "auto"
    threads: int | None = None
    seed: int = 0

    def validate(self) -> None:
        if not self.run:
            raise ConfigError("the map needs a pre-training RUN folder")
        if self.method not in PROJECTIONS:
            raise ConfigError(f"unknown projection {self.method!r}: one of {', '.join(PROJECTIONS)}")
        if self.max_slices < 0:
            raise ConfigError("max_slices must be 0 (every slice) or more")


@dataclass(frozen=True)
class ReportConfig:
    """``gcl report``: one self-contained HTML page about a run."""

    run: str = ""
    out: str | None = None  # default: RUN/report
    method: Literal["auto", "pca", "tsne"] = "auto"
    max_slices: int = 3000
    colour_by: str = "volume"
    device: str = "auto"
    threads: int | None = None
    seed: int = 0

    def validate(self) -> None:
        MapConfig(self.run, None, self.method, self.max_slices, self.colour_by).validate()

    def map_config(self) -> MapConfig:
        return MapConfig(self.run, None, self.method, self.max_slices, self.colour_by, self.device, self.threads,
                         self.seed)
