"""The map of the folder: every (selected) slice of the scanned folder as a point, with its meta labels.

A :class:`FolderMap` is what the CSV holds: one row per slice (volume id, source, slice index, x, y and
one column per meta label, values readable), so a GUI can colour it by any column and open the volume
of a clicked point at its slice. Building it is one call: :func:`build_map`.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np

from gcl_engine.errors import InputError
from gcl_engine.events import EventSink, Log, emit
from gcl_engine.insight.config import MapConfig
from gcl_engine.insight.pool import PoolSlices, pool_embeddings, pool_slices
from gcl_engine.insight.projection import project_2d
from gcl_engine.insight.results import FIXED_COLUMNS, FolderMap
from gcl_engine.insight.run_model import Embeddings, RunModel
from gcl_engine.io.atomic import atomic_write_text
from gcl_engine.runtime import CancelToken


def map_from_pool(pool: PoolSlices, emb: Embeddings, method: str, seed: int, step: int) -> FolderMap:
    xy, used = project_2d(emb.z, method, seed)
    records = pool.records
    labels = {name: pool.label_values(name) for name in pool.colour_choices()}
    return FolderMap([records[v].volume_id for v in pool.volume], [records[v].source for v in pool.volume],
                     pool.index.astype(int), xy, labels, used, step)


def build_map(cfg: MapConfig, on_event: EventSink | None = None, cancel: CancelToken | None = None,
              model: RunModel | None = None) -> tuple[FolderMap, PoolSlices, Embeddings, RunModel]:
    """Embed the run's folder with its last checkpoint and project it (everything a report needs too)."""
    cfg.validate()
    t0 = time.perf_counter()
    model = model or RunModel.load(cfg.run, cfg.device)
    pool = pool_slices(model, cfg.max_slices, on_event, cancel)
    emb = pool_embeddings(model, pool, on_event, cancel)
    fmap = map_from_pool(pool, emb, cfg.method, cfg.seed, model.step)
    fmap.seconds = time.perf_counter() - t0
    emit(on_event, Log("info", f"map of {len(fmap)} slices of {len(pool.records)} volumes ({fmap.method}, "
                               f"step {model.step}) in {fmap.seconds:.1f} s"))
    return fmap, pool, emb, model


def write_map_csv(fmap: FolderMap, path: str | Path) -> Path:
    """The CSV, and beside it ``<name>.json`` saying how it was made (projection, checkpoint step)."""
    about = {"method": fmap.method, "step": fmap.step, "slices": len(fmap), "seconds": round(fmap.seconds, 2)}
    atomic_write_text(Path(path).with_suffix(".json"), json.dumps(about))
    return atomic_write_text(path, fmap.to_csv())


def read_map_csv(path: str | Path) -> FolderMap:
    """A map written by :func:`write_map_csv` (the GUI reloads it in a worker)."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise InputError(p, f"cannot read the map ({exc.strerror or exc})") from exc
    if not rows or tuple(rows[0][:len(FIXED_COLUMNS)]) != FIXED_COLUMNS:
        raise InputError(p, "not a GCL Studio map (its header is not " + ",".join(FIXED_COLUMNS) + ")")
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    extra = header[len(FIXED_COLUMNS):]
    try:
        xy = np.array([[float(r[3]), float(r[4])] for r in body], dtype=np.float32).reshape(-1, 2)
        slices = np.array([int(r[2]) for r in body], dtype=int)
    except ValueError as exc:
        raise InputError(p, f"a row of the map is damaged ({exc})") from exc
    labels = {"volume": [r[0] for r in body]}
    labels.update({name: [r[len(FIXED_COLUMNS) + j] for r in body] for j, name in enumerate(extra)})
    fmap = FolderMap([r[0] for r in body], [r[1] for r in body], slices, xy, labels)
    try:
        about = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
        fmap.method, fmap.step = str(about.get("method", "")), int(about.get("step", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        pass  # a CSV without its sidecar is still a map
    return fmap
