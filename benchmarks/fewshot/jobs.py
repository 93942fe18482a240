"""What a worker process runs: one pre-training (+ diagnostics + linear probe), or one fine-tune + scoring.

Jobs and results are plain dicts (picklable, JSON-able). Workers run single-threaded by default: on the
shared 2-core machine two threads per process ran fine-tuning ~10x slower than one (OpenMP threads spin
while the other core is busy), see the README section.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from gcl_engine import api
from gcl_engine.config import FinetuneConfig, ModelConfig, PredictConfig, PreprocessConfig, PretrainConfig

from .scoring import dice_scores, encoder_from, linear_probe, mean_of, summarise_metrics
from .tasks import load_image, load_task, support_slices


def worker_init(threads: int | None, speed_patch: bool) -> None:
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    if speed_patch:
        apply_speed_patch()


def apply_speed_patch() -> None:
    """Return plain tensors from the fine-tuning augmentation (it returns MONAI MetaTensors).

    Same values (the loss of a fine-tune is bit-identical with and without), but every later op of the
    step no longer goes through MetaTensor.__torch_function__: fine-tuning ran ~25% faster here.
    The engine does this itself since the few-shot defaults were applied (SegmentationAugment returns plain
    tensors); the patch is kept, a no-op there, for the pinned engine snapshot the CPU tables were made with.
    """
    from gcl_engine.training import finetune_data

    cls = finetune_data.SegmentationAugment
    if getattr(cls, "_fewshot_patched", False):
        return
    original = cls.__call__

    def call(self, images, labels, seed):
        x, y = original(self, images, labels, seed)
        plain = getattr(x, "as_tensor", None)
        return (plain() if plain else x), (y.as_tensor() if hasattr(y, "as_tensor") else y)

    cls.__call__ = call
    cls._fewshot_patched = True


def _model(job: dict) -> ModelConfig:
    return ModelConfig(base_channels=job["base_channels"], levels=job.get("levels", 5))


def _pre(job: dict) -> PreprocessConfig:
    return PreprocessConfig(size=job["size"], field_of_view_mm=job.get("fov"))


def run_pretrain(job: dict) -> dict:
    """Pre-train (unless ``random``), summarise metrics.jsonl, linear-probe the frozen encoder."""
    t0 = time.perf_counter()
    run_dir = Path(job["run_dir"])
    checkpoint, diag, meta_labels, steps_done = None, {}, [], 0
    if job["method"] != "random":
        cfg = PretrainConfig(
            folder=job["pool"], out=str(run_dir), cache=job["cache"], method=job["method"], steps=job["steps"],
            seed=job["seed"], threads=job["threads"], device=job["device"], checkpoint_every=job["steps"],
            volumes_per_batch=job["volumes_per_batch"], data_workers=job.get("data_workers"),
            preprocess=_pre(job), model=_model(job),
            **job["overrides"])
        res = api.pretrain(cfg)
        checkpoint, meta_labels, steps_done = res.checkpoint, res.meta_labels, res.steps_done
        diag = summarise_metrics(api.read_metrics(run_dir))
    pretrain_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    enc = encoder_from(checkpoint, _model(job), job["seed"])
    probe = {}
    for name in job["probe_volumes"]:
        task, vol = load_task(name), load_image(name)
        probe[name] = linear_probe(enc, vol.array, vol.meta.modality, task.labels, len(task.class_names), _pre(job),
                                   steps=job["probe_steps"], seed=job["seed"], geometry=vol.geometry)
    return {"kind": "pretrain", "key": job["key"], "variant": job["variant"], "seed": job["seed"],
            "checkpoint": checkpoint, "meta_labels": meta_labels, "steps_done": steps_done,
            "pretrain_s": round(pretrain_s, 1), "probe_s": round(time.perf_counter() - t1, 1),
            "diagnostics": diag, "probe": probe}


def _score(pred: np.ndarray, ref: np.ndarray, classes: list[int], names: tuple[str, ...],
           small: tuple[str, ...]) -> dict:
    d3, ds = dice_scores(pred, ref, classes)
    d3n = {names[c]: round(v, 5) for c, v in d3.items()}
    dsn = {names[c]: round(v, 5) for c, v in ds.items()}
    return {"dice3d": d3n, "dice_slice": dsn, "mean3d": mean_of(d3n), "mean_slice": mean_of(dsn),
            "small3d": mean_of(d3n, small) if small else float("nan"),
            "small_slice": mean_of(dsn, small) if small else float("nan")}


def run_finetune(job: dict) -> dict:
    """Fine-tune on k support slices of one volume, score the held-out slices and the cross targets."""
    task = load_task(job["volume"])
    support = support_slices(task.n_slices, job["k"], job["seed"])
    out = Path(job["tmp_dir"]) / f"{job['key']}.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = FinetuneConfig(
        image=str(task.image), out=str(out), pretrained=job["checkpoint"], slices=tuple(support),
        class_names=task.class_names, steps=job["steps"], seed=job["seed"], threads=job["threads"],
        device=job["device"], preprocess=_pre(job), model=_model(job), **job["overrides"])
    t0 = time.perf_counter()
    res = api.finetune(cfg, labels_array=task.labels)
    finetune_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    seg = api.Segmenter.load(res.model_path, PredictConfig(device=job["device"], backend="torch"))
    pred = seg.predict(load_image(job["volume"])).labels.astype(np.int64)
    in_support = [c for c in range(1, len(task.class_names)) if (task.labels[support] == c).any()]
    held = [i for i in range(task.n_slices) if i not in support]
    targets = {job["volume"]: {"support": support, "classes_in_support": [task.class_names[c] for c in in_support],
                               **_score(pred[held], task.labels[held], in_support, task.class_names, task.small)}}
    for name in job["cross"]:
        tgt = load_task(name)
        shared = [c for c in in_support if task.class_names[c] in tgt.class_names]
        if task.class_names != tgt.class_names[:len(task.class_names)]:
            raise RuntimeError(f"{job['volume']} and {name} do not share a class list")
        p = seg.predict(load_image(name)).labels.astype(np.int64)
        targets[f"{job['volume']}>{name}"] = _score(p, tgt.labels, shared, tgt.class_names, tgt.small)
    out.unlink(missing_ok=True)
    return {"kind": "finetune", "key": job["key"], "variant": job["variant"], "seed": job["seed"], "k": job["k"],
            "volume": job["volume"], "targets": targets, "last_loss": res.last_loss,
            "finetune_s": round(finetune_s, 1), "predict_s": round(time.perf_counter() - t1, 1)}


def run_job(job: dict) -> dict:
    t0 = time.perf_counter()
    result = run_pretrain(job) if job["kind"] == "pretrain" else run_finetune(job)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    result["pid"] = os.getpid()
    return result
