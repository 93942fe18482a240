"""The pre-training batch sampler of GCL_SPEC.md: V volumes x one slice per position partition.

Every batch then holds positives for every meta label. Randomness comes from ``(seed, step)`` alone, so
a resumed run and a run split across processes draw exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gcl_engine.data.meta_labels import MetaLabelTable


@dataclass(frozen=True)
class BatchIndex:
    """Global rows of the meta-label table chosen for one step, (V*P,)."""

    rows: np.ndarray


class PartitionSampler:
    def __init__(self, table: MetaLabelTable, volumes_per_batch: int, seed: int):
        self.table = table
        self.volumes_per_batch = volumes_per_batch
        self.seed = seed
        self.n_volumes = int(table.volume.max()) + 1 if len(table.volume) else 0
        # rows of each (volume, partition) cell, for O(1) draws
        self._cells: dict[tuple[int, int], np.ndarray] = {}
        for v in range(self.n_volumes):
            rows = np.flatnonzero(table.volume == v)
            for p in range(table.n_partitions):
                cell = rows[table.partition[rows] == p]
                self._cells[(v, p)] = cell if len(cell) else rows

    def batch(self, step: int, volumes_per_batch: int | None = None) -> BatchIndex:
        rng = np.random.default_rng([self.seed, step])
        v_count = volumes_per_batch or self.volumes_per_batch
        vols = rng.choice(self.n_volumes, size=v_count, replace=v_count > self.n_volumes)
        rows = [rng.choice(self._cells[(int(v), p)]) for v in vols for p in range(self.table.n_partitions)]
        return BatchIndex(np.asarray(rows, dtype=np.int64))
