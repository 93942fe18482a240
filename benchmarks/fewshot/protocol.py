"""The protocol as a job graph: one pre-training per (variant, seed), reused by every fine-tune of that seed
(each volume, each k); a resumable record file; a small scheduler over worker processes.

Order: seed by seed, and within a seed row by row, each pre-training's fine-tunes before the next
pre-training starts, so that a run cut short still holds complete paired comparisons.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path

from . import jobs
from .tasks import pool_folder
from .variants import Settings, Variant


def _key(payload: dict) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Plan:
    """Every job of a configuration, with stable keys (the same job in two runs has the same key)."""

    def __init__(self, settings: Settings, variants: list[Variant], run_root: Path, speed_patch: bool):
        self.settings, self.variants, self.run_root = settings, variants, run_root
        self.speed_patch = speed_patch
        self.cache = str(run_root / "slice_cache")
        self.pretrain: dict[str, dict] = {}
        self.finetune: dict[str, dict] = {}
        self.rows: dict[tuple[str, int], str] = {}  # (variant name, seed) -> pretrain key
        for seed in settings.seeds:
            for rank, v in enumerate(variants):
                self._add(v, seed, rank)

    def pool_dir(self, v: Variant) -> str:
        return pool_folder(v.get("pool", self.settings.pool), self.run_root)

    def _common(self, v: Variant) -> dict:
        s = self.settings
        out = {"size": int(v.get("size", s.size)), "base_channels": s.base_channels}
        if int(v.get("levels", 5)) != 5:  # only when not the default, so that earlier records keep their keys
            out["levels"] = int(v.get("levels"))
        if v.get("fov") is not None:
            out["fov"] = float(v.get("fov"))
        return out

    def _add(self, v: Variant, seed: int, rank: int) -> None:
        s = self.settings
        common = self._common(v)
        pt_id = {"method": v.method, "overrides": v.pretrain_overrides, "seed": seed, **common}
        if v.trains:
            pt_id.update(steps=int(v.get("steps", s.pretrain_steps)), pool=v.get("pool", s.pool),
                         volumes_per_batch=s.volumes_per_batch)
        pkey = _key({**pt_id, "probe": [s.probe_volumes, s.probe_steps]})
        self.rows[(v.name, seed)] = pkey
        if pkey not in self.pretrain:
            self.pretrain[pkey] = {
                "kind": "pretrain", "key": pkey, "variant": v.name, "method": v.method, "seed": seed,
                "steps": pt_id.get("steps", 0), "overrides": v.pretrain_overrides, "pool": self.pool_dir(v),
                "cache": self.cache, "run_dir": str(self.run_root / "pretrain" / pkey), "device": s.device,
                "threads": s.threads, "volumes_per_batch": s.volumes_per_batch, "probe_volumes": s.probe_volumes,
                "data_workers": s.data_workers,
                "probe_steps": s.probe_steps, "order": (seed, rank, 0), **common}
        for volume in s.volumes:
            cross = [c.split(">", 1)[1] for c in s.cross if c.split(">", 1)[0] == volume]
            for k in s.k:
                ft_steps = int(v.get("ft.steps", s.finetune_steps))
                fkey = _key({"pretrain": pkey, "ft": v.finetune_overrides, "volume": volume, "k": k, "seed": seed,
                             "steps": ft_steps, "cross": cross, **common})
                self.finetune.setdefault(fkey, {
                    "kind": "finetune", "key": fkey, "variant": v.name, "pretrain_key": pkey, "seed": seed, "k": k,
                    "volume": volume, "cross": cross, "steps": ft_steps, "overrides": v.finetune_overrides,
                    "device": s.device, "threads": s.threads, "tmp_dir": str(self.run_root / "models"),
                    "order": (seed, rank, 1), **common})

    def finetune_key(self, variant: str, seed: int, volume: str, k: int) -> str | None:
        pkey = self.rows.get((variant, seed))
        for key, job in self.finetune.items():
            if job["pretrain_key"] == pkey and job["volume"] == volume and job["k"] == k and job["variant"] == variant:
                return key
        return None


class Records:
    """Append-only JSONL of finished jobs, keyed; the run resumes from it."""

    def __init__(self, path: Path):
        self.path = path
        self.by_key: dict[str, dict] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.by_key[rec["key"]] = rec

    def add(self, rec: dict) -> None:
        self.by_key[rec["key"]] = rec
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, default=str) + "\n")


def _log(msg: str) -> None:
    print(f"[fewshot {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_plan(plan: Plan, records: Records, workers: int) -> float:
    """Run every job not yet in ``records``; returns the wall time."""
    t0 = time.perf_counter()
    todo_pt = {k: j for k, j in plan.pretrain.items() if k not in records.by_key}
    todo_ft = {k: j for k, j in plan.finetune.items() if k not in records.by_key}
    _log(f"{len(todo_pt)} pre-training and {len(todo_ft)} fine-tuning jobs to run "
         f"({len(plan.pretrain) - len(todo_pt)} + {len(plan.finetune) - len(todo_ft)} already done), "
         f"{workers} worker(s)")
    if not todo_pt and not todo_ft:
        return 0.0
    ctx = mp.get_context("spawn")
    inflight: dict[Future, dict] = {}
    done_n, total = 0, len(todo_pt) + len(todo_ft)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=jobs.worker_init,
                             initargs=(plan.settings.threads, plan.speed_patch)) as pool:
        while todo_pt or todo_ft or inflight:
            while len(inflight) < workers:
                job = _next_ready(todo_pt, todo_ft, records)
                if job is None:
                    break
                if job["kind"] == "finetune":
                    job = {**job, "checkpoint": records.by_key[job["pretrain_key"]]["checkpoint"]}
                inflight[pool.submit(jobs.run_job, job)] = job
            if not inflight:
                raise RuntimeError("no job is ready and none is running: a pre-training failed?")
            finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for fut in finished:
                job = inflight.pop(fut)
                try:
                    rec = fut.result()
                except Exception as exc:  # one failed job must not lose the others' results
                    _log(f"FAILED {job['kind']} {job['variant']} seed {job['seed']}: {exc!r}")
                    if job["kind"] == "pretrain":  # its fine-tunes can never run
                        for k in [k for k, j in todo_ft.items() if j["pretrain_key"] == job["key"]]:
                            todo_ft.pop(k)
                            total -= 1
                    continue
                records.add(rec)
                done_n += 1
                _log(f"{done_n}/{total} {_describe(rec)} ({rec['wall_s']} s; elapsed "
                     f"{time.perf_counter() - t0:.0f} s)")
    return time.perf_counter() - t0


def _next_ready(todo_pt: dict, todo_ft: dict, records: Records) -> dict | None:
    ready = [j for j in todo_ft.values() if j["pretrain_key"] in records.by_key]
    ready += list(todo_pt.values())
    if not ready:
        return None
    job = min(ready, key=lambda j: (j["order"], j["key"]))
    (todo_ft if job["kind"] == "finetune" else todo_pt).pop(job["key"])
    return job


def _describe(rec: dict) -> str:
    if rec["kind"] == "pretrain":
        probe = ", ".join(f"{v}: {p.get('all_levels', float('nan')):.3f}" for v, p in rec["probe"].items())
        return f"pretrain {rec['variant']} seed {rec['seed']}: {rec['pretrain_s']} s, probe {probe}"
    scores = ", ".join(f"{t} {s['mean3d']:.3f}" for t, s in rec["targets"].items())
    return f"finetune {rec['variant']} seed {rec['seed']} {rec['volume']} k={rec['k']}: {scores}"


def settings_dict(settings: Settings) -> dict:
    return asdict(settings)


def python_cmd() -> str:
    return sys.executable
