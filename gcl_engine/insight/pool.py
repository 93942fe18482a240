"""The pre-training pool as the insight tools see it: which slices, their meta labels, their embeddings.

The folder is scanned with the run's cache and preprocessing, so a scan after training reads no pixels
(a cache hit opens the manifest only). Above ``max_slices`` the slices are spread evenly over the
volumes (every volume keeps at least one), which bounds the cost on a folder of hundreds of volumes.
Embeddings are kept in ``RUN/insight/embeddings.npz``, keyed by the checkpoint, the slice selection and
the folder's records, so the map, the fit check and the report share one pass of the network.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gcl_engine.data.meta_labels import UNKNOWN_BASE, MetaLabelTable, read_sidecar_csv
from gcl_engine.data.scan import ScanResult, VolumeRecord, scan_folder
from gcl_engine.data.slice_cache import SliceCache
from gcl_engine.errors import Cancelled, InputError, OutputError
from gcl_engine.events import EventSink, Log, Progress, emit
from gcl_engine.insight.files import EMBEDDINGS_FILE
from gcl_engine.insight.run_model import Embeddings, RunModel
from gcl_engine.io.atomic import atomic_write
from gcl_engine.runtime import CancelToken, is_cancelled


@dataclass
class PoolSlices:
    """Selected slices of the scanned folder: row r is slice ``index[r]`` of volume ``records[volume[r]]``."""

    scan: ScanResult
    table: MetaLabelTable
    volume: np.ndarray  # (n,) index into records
    index: np.ndarray  # (n,) slice index within the volume (the stored array's index along the slicing axis)
    rows: np.ndarray  # (n,) row of the meta-label table

    @property
    def records(self) -> list[VolumeRecord]:
        return self.scan.volumes

    def label_values(self, name: str) -> list[str]:
        """Readable value of meta label ``name`` for each selected slice ("unknown" where it has none)."""
        if name == "volume":
            return [self.records[v].volume_id for v in self.volume]
        if name == "position":  # the position bin of the slice within its volume
            parts = self.table.partition[self.rows]
            return [f"{int(p) + 1}/{self.table.n_partitions}" for p in parts]
        codes = self.table.labels[name][self.rows]
        if name == "series":
            names = sorted({f"{r.modality}|{r.series}" for r in self.records})
            return [names[int(c)] if c < UNKNOWN_BASE else "unknown" for c in codes]
        prefix = {"subject": "subject ", "phase": "phase "}.get(name, "")
        return ["unknown" if c >= UNKNOWN_BASE else f"{prefix}{int(c)}" for c in codes]

    def colour_choices(self) -> list[str]:
        return ["volume", *self.table.labels]

    def digest(self) -> str:
        """What the slices are: records (ids, cache keys) and the selection; embeddings are keyed by it."""
        blob = json.dumps([[r.volume_id, r.cache_key] for r in self.records]).encode()
        h = hashlib.sha1(blob)
        h.update(self.volume.tobytes())
        h.update(self.index.tobytes())
        return h.hexdigest()[:20]


def select_rows(table: MetaLabelTable, max_slices: int) -> np.ndarray:
    """Rows of the table to embed: all, or about ``max_slices`` spread evenly, at least one per volume."""
    n = len(table.volume)
    if max_slices <= 0 or n <= max_slices:
        return np.arange(n)
    keep = []
    for v in np.unique(table.volume):
        rows = np.flatnonzero(table.volume == v)
        m = max(1, int(round(len(rows) * max_slices / n)))
        keep.append(rows[np.unique(np.linspace(0, len(rows) - 1, m).round().astype(int))])
    return np.concatenate(keep)


def pool_slices(model: RunModel, max_slices: int, on_event: EventSink | None = None,
                cancel: CancelToken | None = None) -> PoolSlices:
    """Scan the run's folder (cache hits read no pixels) and pick the slices to embed."""
    cfg = model.config
    if not cfg.folder or not Path(cfg.folder).exists():
        raise InputError(cfg.folder or model.root, "the run's scan folder is not there any more")
    cache = Path(cfg.cache) if cfg.cache else model.root / "cache"
    scan = scan_folder(cfg.folder, cache=cache, preprocess=cfg.preprocess, n_partitions=cfg.position_partitions,
                       on_event=on_event, cancel=cancel)
    if not scan.volumes:
        raise InputError(cfg.folder, "no usable volume in the run's scan folder")
    sidecar = read_sidecar_csv(cfg.meta_csv) if cfg.meta_csv and Path(cfg.meta_csv).is_file() else None
    table = scan.table(cfg.position_partitions, cfg.position_within, sidecar)
    rows = select_rows(table, max_slices)
    return PoolSlices(scan, table, table.volume[rows], table.index[rows], rows)


def pool_embeddings(model: RunModel, pool: PoolSlices, on_event: EventSink | None = None,
                    cancel: CancelToken | None = None) -> Embeddings:
    """The embeddings of the pool's slices with the run's checkpoint (from ``RUN/insight`` when current)."""
    key = f"{model.key}|{pool.digest()}"
    path = model.insight_dir / EMBEDDINGS_FILE
    cached = _read(path, key)
    if cached is not None:
        return cached
    t0 = time.perf_counter()
    store = SliceCache(pool.scan.cache)
    cfg = model.config.model
    out = Embeddings(np.zeros((len(pool.volume), cfg.encoder_channels), np.float32),
                     np.zeros((len(pool.volume), cfg.image_proj_dim), np.float32))
    total, done = len(pool.volume), 0
    for v in np.unique(pool.volume):
        if is_cancelled(cancel):
            raise Cancelled("embedding cancelled")
        rec = pool.records[int(v)]
        array = store.get(rec.cache_key) if rec.cache_key else None
        if array is None:
            raise InputError(rec.source, "the slice cache lost this volume; scan the folder again")
        where = np.flatnonzero(pool.volume == v)
        emb = model.embed(np.asarray(array[pool.index[where]]), cancel)
        if len(emb.z) < len(where):
            raise Cancelled("embedding cancelled")
        out.features[where], out.z[where] = emb.features, emb.z
        done += len(where)
        emit(on_event, Progress("embed", done, total, f"slice embeddings with the step-{model.step} checkpoint"))
    emit(on_event, Log("info", f"embedded {total} slices in {time.perf_counter() - t0:.1f} s"))
    _write(path, key, out, on_event)
    return out


def _read(path: Path, key: str) -> Embeddings | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            return Embeddings(data["features"], data["z"])
    except (OSError, KeyError, ValueError):
        return None


def _write(path: Path, key: str, emb: Embeddings, on_event: EventSink | None) -> None:
    """Atomically; a read-only run folder only costs the next call another pass (said once, not fatal)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, key=np.array(key), features=emb.features, z=emb.z)
    except (OSError, OutputError) as exc:
        emit(on_event, Log("warning", f"{path.parent}: embeddings not kept ({exc})"))
