"""Does this scan fit? Distance of a scan's slice embeddings to the pre-training pool, against a threshold.

Score of a slice: mean cosine distance of its (pool-centred) embedding to its k nearest pool slices. To
calibrate, the pool is cut into 5 folds (whole volumes when there are at least 5, else contiguous blocks of
each volume) and every pool slice is scored against the folds it is not in. Each held-out unit (a volume,
or a block of one) gets the median of its slices' scores, just as a new scan does, and the threshold is the
99th percentile of those unit scores: a scan is ``outside`` when its typical slice lies farther from the
pool than that of 99% of the pool's own scans held out (measured first on slices: a 99th percentile of
slice scores sat in the long tail of a scan's odd slices, far above every scan's median, and flagged
nothing). New scans are scored against the whole pool.
The reference and the threshold are kept in ``RUN/insight/fit.npz`` per checkpoint (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from gcl_engine.data.preprocessing import prepare_volume_slices
from gcl_engine.errors import InputError, OutputError
from gcl_engine.events import EventSink, Log, emit
from gcl_engine.insight.files import FIT_FILE
from gcl_engine.insight.pool import PoolSlices, pool_embeddings, pool_slices
from gcl_engine.insight.results import FitVerdict
from gcl_engine.insight.run_model import Embeddings, RunModel
from gcl_engine.io.atomic import atomic_write
from gcl_engine.io.loading import load_volume
from gcl_engine.io.volume import Volume
from gcl_engine.runtime import CancelToken

MIN_VOLUMES_FOR_VOLUME_HOLDOUT = 5


@dataclass(frozen=True)
class FitSettings:
    k: int = 5
    percentile: float = 99.0
    folds: int = 5  # every pool slice is scored once, against the folds it is not in
    features: Literal["encoder", "projection"] = "encoder"  # chosen by benchmarks/fit_check_auroc.py
    centre: bool = True  # subtract the pool's mean before the cosine (pooled activations are all positive)
    max_slices: int = 3000
    seed: int = 0


@dataclass
class FitReference:
    reference: np.ndarray  # (n_ref, C) unit vectors
    mean: np.ndarray  # (C,) subtracted from every vector before normalising (zeros without centring)
    threshold: float
    holdout_scores: np.ndarray  # (n,) each pool slice's score against the other folds
    settings: FitSettings
    step: int
    holdout: str  # what a fold holds out: "volumes" | "blocks"


def raw_vectors(emb: Embeddings, features: str) -> np.ndarray:
    return emb.features if features == "encoder" else emb.z


def unit(v: np.ndarray, mean: np.ndarray) -> np.ndarray:
    c = v - mean
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)


def knn_distance(queries: np.ndarray, reference: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """(n,) mean cosine distance of each unit query to its k nearest unit reference vectors."""
    if not len(reference):
        raise InputError(None, "the fit check has no reference slices")
    k = max(1, min(k, len(reference)))
    out = []
    for lo in range(0, len(queries), chunk):
        dist = 1.0 - queries[lo:lo + chunk] @ reference.T
        out.append(np.partition(dist, k - 1, axis=1)[:, :k].mean(axis=1))
    return np.concatenate(out) if out else np.zeros(0)


def holdout_folds(volume: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, str]:
    """A fold number per row: whole volumes (when there are at least 5), else contiguous blocks of each volume."""
    rng = np.random.default_rng(seed)
    ids = np.unique(volume)
    fold = np.zeros(len(volume), dtype=int)
    if len(ids) >= MIN_VOLUMES_FOR_VOLUME_HOLDOUT:
        for rank, v in enumerate(rng.permutation(ids)):
            fold[volume == v] = rank % folds
        return fold, "volumes"
    for v in ids:
        rows = np.flatnonzero(volume == v)
        shift = int(rng.integers(0, folds))
        fold[rows] = (np.arange(len(rows)) * folds // max(len(rows), 1) + shift) % folds
    return fold, "blocks"


def calibrate(raw: np.ndarray, volume: np.ndarray, settings: FitSettings, step: int = 0) -> FitReference:
    """Score every pool slice against the folds it is not in; the threshold is a percentile of the held-out units'
    median scores (a unit: a volume, or a block of one)."""
    fold, kind = holdout_folds(volume, settings.folds, settings.seed)
    if len(np.unique(fold)) < 2:
        raise InputError(None, "the pool is too small to calibrate a fit check (it needs at least 2 slices)")
    mean = raw.mean(axis=0) if settings.centre else np.zeros(raw.shape[1], raw.dtype)
    vectors = unit(raw, mean)
    scores = np.zeros(len(raw))
    for f in np.unique(fold):
        held = fold == f
        scores[held] = knn_distance(vectors[held], vectors[~held], settings.k)
    units = [np.median(scores[(fold == f) & (volume == v)]) for f in np.unique(fold) for v in np.unique(volume)
             if ((fold == f) & (volume == v)).any()]
    threshold = float(np.percentile(units, settings.percentile))
    return FitReference(vectors.astype(np.float32), mean.astype(np.float32), threshold, scores.astype(np.float32),
                        settings, step, kind)


def fit_reference(model: RunModel, settings: FitSettings = FitSettings(), on_event: EventSink | None = None,
                  cancel: CancelToken | None = None, pool: PoolSlices | None = None,
                  emb: Embeddings | None = None) -> FitReference:
    """The calibrated reference of the run's checkpoint (from ``RUN/insight/fit.npz`` when current)."""
    key = json.dumps({"checkpoint": model.key, **asdict(settings)}, sort_keys=True)
    path = model.insight_dir / FIT_FILE
    cached = _read(path, key, settings)
    if cached is not None:
        return cached
    pool = pool or pool_slices(model, settings.max_slices, on_event, cancel)
    emb = emb if emb is not None else pool_embeddings(model, pool, on_event, cancel)
    ref = calibrate(raw_vectors(emb, settings.features), pool.volume, settings, model.step)
    _write(path, key, ref, on_event)
    return ref


def scan_embeddings(model: RunModel, volume: Volume, cancel: CancelToken | None = None) -> Embeddings:
    """Embeddings of every slice of ``volume``, preprocessed as the run's slices were."""
    if volume.array.ndim != 3:
        raise InputError(volume.meta.source, f"expected a 3D volume, got {volume.array.ndim} dimensions")
    slices = prepare_volume_slices(volume.array, volume.meta.modality, model.config.preprocess,
                                   volume.geometry.direction, volume.geometry.spacing).numpy()
    if not np.isfinite(slices).all():
        raise InputError(volume.meta.source, "non-finite values after normalisation")
    return model.embed(slices, cancel)


def score_embeddings(emb: Embeddings, ref: FitReference) -> FitVerdict:
    per_slice = knn_distance(unit(raw_vectors(emb, ref.settings.features), ref.mean), ref.reference, ref.settings.k)
    score = float(np.median(per_slice))
    return FitVerdict(score, ref.threshold, "inside" if score <= ref.threshold else "outside",
                      float((per_slice > ref.threshold).mean()), len(per_slice), ref.step, ref.settings.percentile)


def check_fit(run: str | Path, image: str | Path | Volume, device: str = "auto",
              settings: FitSettings = FitSettings(), on_event: EventSink | None = None,
              cancel: CancelToken | None = None, model: RunModel | None = None) -> FitVerdict:
    """Score a scan (a path or a loaded volume) against the run's pool: score, threshold, verdict."""
    model = model or RunModel.load(run, device)
    volume = image if isinstance(image, Volume) else load_volume(image)
    ref = fit_reference(model, settings, on_event, cancel)
    return score_embeddings(scan_embeddings(model, volume, cancel), ref)


def _read(path: Path, key: str, settings: FitSettings) -> FitReference | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            return FitReference(data["reference"], data["mean"], float(data["threshold"]), data["holdout_scores"],
                                settings, int(data["step"]), str(data["holdout"]))
    except (OSError, KeyError, ValueError):
        return None


def _write(path: Path, key: str, ref: FitReference, on_event: EventSink | None) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, key=np.array(key), reference=ref.reference, mean=ref.mean, threshold=np.array(ref.threshold),
                     holdout_scores=ref.holdout_scores, step=np.array(ref.step), holdout=np.array(ref.holdout))
    except (OSError, OutputError) as exc:
        emit(on_event, Log("warning", f"{path.parent}: fit calibration not kept ({exc})"))
