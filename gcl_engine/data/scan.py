"""Scan a folder: discover volumes, read each once, cache its normalised slices, derive meta labels.

Reads one volume at a time and keeps only its memory map, so memory stays bounded for any folder size.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gcl_engine.config import PreprocessConfig
from gcl_engine.data.meta_labels import MetaLabelSummary, MetaLabelTable, SliceRecord, build_table
from gcl_engine.data.preprocessing import prepare_volume_slices
from gcl_engine.data.slice_cache import SliceCache, source_fingerprint
from gcl_engine.errors import Cancelled, InputError
from gcl_engine.events import EventSink, Log, Progress, emit
from gcl_engine.io.folder_index import SkippedFile, discover, folder_signature
from gcl_engine.io.loading import load_one, load_volumes
from gcl_engine.io.volume import Volume, VolumeSource
from gcl_engine.runtime import CancelToken


@dataclass
class VolumeRecord:
    """One usable volume of the folder (identifier-free: the subject is a salted hash).

    It carries its address: ``source`` (a file, or the DICOM folder), ``files`` (the files of its series)
    and ``time_index`` (its time point in a 4D file), so :func:`load_record` reads exactly this volume.
    """

    volume_id: str
    source: str
    modality: str
    series: str
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    subject_hash: str
    n_time_points: int = 1
    time_index: int | None = None
    slice_phase: tuple[int, ...] | None = None
    n_slices: int = 0
    cache_key: str | None = None
    kind: str = "other"
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def address(self) -> VolumeSource:
        return VolumeSource(self.source, self.kind, self.files)


def load_record(record: VolumeRecord) -> Volume:
    """Exactly the volume a scan record stands for (its file or series, its time point)."""
    return load_one(record.address, record.time_index)


@dataclass
class ScanResult:
    folder: str
    volumes: list[VolumeRecord] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    meta_labels: dict[str, MetaLabelSummary] = field(default_factory=dict)
    cache: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "folder": self.folder,
            "cache": self.cache,
            "seconds": round(self.seconds, 3),
            "volumes": [asdict(v) for v in self.volumes],
            "skipped": [asdict(s) for s in self.skipped],
            "meta_labels": {k: asdict(v) for k, v in self.meta_labels.items()},
        }

    def slice_records(self) -> list[SliceRecord]:
        return [
            SliceRecord(v.volume_id, Path(v.source).name, v.n_slices, v.subject_hash,
                        f"{v.modality}|{v.series}", v.time_index, v.slice_phase)
            for v in self.volumes
        ]

    def table(self, n_partitions: int = 4, position_within: str = "series",
              sidecar: dict | None = None) -> MetaLabelTable:
        return build_table(self.slice_records(), n_partitions, position_within, sidecar)


def scan_folder(
    folder: str | Path,
    cache: str | Path | None = None,
    preprocess: PreprocessConfig | None = None,
    n_partitions: int = 4,
    on_event: EventSink | None = None,
    cancel: CancelToken | None = None,
) -> ScanResult:
    """Index ``folder``; with ``cache``, also store every volume's slices for training."""
    t0 = time.perf_counter()
    cfg = preprocess or PreprocessConfig()
    store = SliceCache(cache) if cache is not None else None
    sources, skipped = _discover(folder, store, on_event, cancel)
    result = ScanResult(str(folder), skipped=list(skipped), cache=str(cache) if cache else None)
    for i, src in enumerate(sources):
        if cancel is not None and cancel.cancelled:
            raise Cancelled("scan cancelled")
        emit(on_event, Progress("scan", i, len(sources), f"reading {Path(src.path).name}"))
        try:
            records = _scan_source(src, cfg, store)
        except InputError as exc:
            result.skipped.append(SkippedFile(src.path, exc.reason))
            emit(on_event, Log("warning", f"skipped {src.path}: {exc.reason}"))
            continue
        result.volumes.extend(records)
        for note in dict.fromkeys(n for r in records for n in r.notes):
            emit(on_event, Log("warning", note))
    emit(on_event, Progress("scan", len(sources), len(sources), "done"))
    result.meta_labels = result.table(n_partitions).summaries() if result.volumes else {}
    result.seconds = time.perf_counter() - t0
    logging.getLogger(__name__).info("scanned %s: %d volume(s), %d file(s) skipped, %.1f s", folder,
                                     len(result.volumes), len(result.skipped), result.seconds)
    return result


def _discover(folder: str | Path, store: SliceCache | None, on_event: EventSink | None,
              cancel: CancelToken | None) -> tuple[list[VolumeSource], list[SkippedFile]]:
    """``discover``, kept in the cache under the folder's signature (every file's path, size, mode and times):
    a scan of an unchanged folder reads no header again, which was all of a cache hit's time."""
    if store is None:
        return discover(folder, on_event=on_event, cancel=cancel)
    key = SliceCache.key(folder_signature(folder), "discovery-v1", PreprocessConfig())
    rows = store.get_manifest(key)
    try:
        found = ([VolumeSource(**_tuples(s)) for s in rows[0]["sources"]],
                 [SkippedFile(**_tuples(s)) for s in rows[0]["skipped"]])
    except (TypeError, KeyError, IndexError):  # absent, damaged or written by another version: discover again
        found = None
    if found is not None:
        emit(on_event, Progress("discover", 1, 1, f"{len(found[0])} volume(s) found (unchanged folder)"))
        return found
    sources, skipped = discover(folder, on_event=on_event, cancel=cancel)
    store.put_manifest(key, [{"sources": [asdict(s) for s in sources], "skipped": [asdict(s) for s in skipped]}])
    return sources, skipped


def _tuples(row: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}


def _scan_source(src: VolumeSource, cfg: PreprocessConfig, store: SliceCache | None) -> list[VolumeRecord]:
    """Records of a source's volumes; a cache hit (same files, same preprocessing) reads no pixels at all."""
    files = list(src.files) or [src.path]
    fingerprint = source_fingerprint(files) if store is not None else ""
    manifest_key = SliceCache.key(fingerprint, f"manifest-v2|{src.path}", cfg) if store is not None else ""
    if store is not None:
        cached = _records_from_manifest(store, manifest_key)
        if cached is not None:
            return cached
    records = []
    for vol in load_volumes(src):
        if vol.array.ndim != 3:
            raise InputError(src.path, f"expected a 3D volume, got {vol.array.ndim} dimensions")
        if min(vol.array.shape) < 1:
            raise InputError(src.path, f"empty volume of shape {vol.array.shape}")
        m = vol.meta
        rec = VolumeRecord(
            m.volume_id, m.source, m.modality, m.series, tuple(int(s) for s in vol.array.shape),
            tuple(float(s) for s in vol.geometry.spacing), m.subject_hash, m.n_time_points, m.time_index,
            m.slice_phase, int(vol.array.shape[cfg.axis]), kind=src.kind, files=src.files, notes=m.notes,
        )
        if store is not None:
            rec.cache_key = _cache_volume(store, fingerprint, vol, cfg)
        records.append(rec)
    if store is not None:
        store.put_manifest(manifest_key, [asdict(r) for r in records])
    return records


def _records_from_manifest(store: SliceCache, key: str) -> list[VolumeRecord] | None:
    rows = store.get_manifest(key)
    if rows is None:
        return None
    try:
        records = [VolumeRecord(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}) for row in rows]
    except TypeError:  # written by another version: rebuild
        return None
    if not all(r.cache_key and store.get(r.cache_key) is not None for r in records):  # opens the header only
        return None
    return records


def _cache_volume(store: SliceCache, fingerprint: str, vol, cfg: PreprocessConfig) -> str:
    key = SliceCache.key(fingerprint, vol.meta.volume_id, cfg)
    if store.get(key) is None:
        slices = prepare_volume_slices(vol.array, vol.meta.modality, cfg, vol.geometry.direction,
                                       vol.geometry.spacing).numpy()
        if not np.isfinite(slices).all():
            raise InputError(vol.meta.source, "non-finite values after normalisation")
        store.put(key, slices)
    return key
