"""GCL pre-training loop: checkpoints, resume, cancel, OOM back-off, metrics, events.

The same function runs from the CLI, under torchrun, and in the GUI's child process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass

import torch

from gcl_engine import __version__
from gcl_engine import checkpoint as ckpt
from gcl_engine.config import PretrainConfig, from_saved_json, to_json
from gcl_engine.errors import CheckpointError, GCLError, OutputError
from gcl_engine.events import CheckpointSaved, EventSink, Finished, Log, Metric, Progress, emit
from gcl_engine.models import GCLPretrainNet
from gcl_engine.run_layout import PRETRAIN_FORMAT, read_metrics
from gcl_engine.runtime import CancelToken, configure_cpu_threads, is_cancelled, seed_everything, select_device
from gcl_engine.training.distributed import DistContext, barrier, init_from_env
from gcl_engine.training.gcl_step import StepInputs, gcl_step
from gcl_engine.training.methods import plan_method
from gcl_engine.training.pretrain_data import BatchFeed, PretrainData, default_workers
from gcl_engine.training.run_files import RunFiles
from gcl_engine.training.schedules import set_lr, warmup_cosine


@dataclass
class PretrainResult:
    run_dir: str
    checkpoint: str | None
    steps_done: int
    status: str  # "completed" | "cancelled"
    meta_labels: list[str]
    last_metrics: dict[str, float]


def _make_optimizer(net: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    cls = torch.optim.RAdam if cfg.optimizer == "radam" else torch.optim.AdamW
    return cls(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def pretrain(cfg: PretrainConfig, on_event: EventSink | None = None, cancel: CancelToken | None = None,
             resume: bool = False) -> PretrainResult:
    cfg.validate()
    device = select_device(cfg.device)
    ctx = init_from_env(device.type)
    if device.type == "cuda" and ctx.enabled:
        device = torch.device("cuda", ctx.local_rank)
    if device.type == "cpu":
        configure_cpu_threads(cfg.threads)
    sink = on_event if ctx.is_main else None
    run = RunFiles(cfg.out, writable=ctx.is_main)
    start_step, state = 0, None
    if resume:
        state = run.latest_checkpoint(PRETRAIN_FORMAT)
        if state is not None:
            cfg = _resumed_config(cfg, state)
            start_step = int(state["step"])
            emit(sink, Log("info", f"resuming {cfg.out} from step {start_step}"))
    if ctx.is_main:
        run.write_config(to_json(cfg))
    seed_everything(cfg.seed)
    data = PretrainData(cfg, run.cache_dir(cfg.cache), on_event=sink, cancel=cancel)
    plan = plan_method(cfg.method, data.usable_labels(), cfg.gradient_filter)
    if data.duplicates:
        emit(sink, Log("info", f"meta label(s) {', '.join(data.duplicates)} group the slices exactly like "
                              "another one on this data: not used twice"))
    emit(sink, Log("info", f"method {plan.name}: meta labels {', '.join(plan.image_labels) or 'none'} on "
                          f"{len(data.scan.volumes)} volumes, {len(data.table.volume)} slices, device {device}"))
    net = GCLPretrainNet(cfg.model, cfg.pixel_level, cfg.pixel_features).to(device)
    optimizer = _make_optimizer(net, cfg)
    if state is not None:
        _restore(net, optimizer, state)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    loop = _Loop(cfg, net, optimizer, data, plan, ctx, device, run, sink, cancel)
    return loop.run(start_step)


def _resumed_config(cfg: PretrainConfig, state: dict) -> PretrainConfig:
    saved = from_saved_json(PretrainConfig, state["config_json"])
    if saved.preprocess.orientation != cfg.preprocess.orientation:  # a run keeps the slice layout it began with
        cfg = dataclasses.replace(cfg, preprocess=dataclasses.replace(cfg.preprocess,
                                                                      orientation=saved.preprocess.orientation))
    if saved.model != cfg.model or saved.preprocess != cfg.preprocess:
        raise CheckpointError("the run folder holds a checkpoint of another model or resolution; "
                              "use a new --out folder or the same settings")
    return cfg


def _restore(net, optimizer, state) -> None:
    try:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint does not fit this model: {exc}") from exc
    ckpt.restore_rng_state(state["rng"])


class _Loop:
    def __init__(self, cfg, net, optimizer, data, plan, ctx: DistContext, device, run, sink, cancel):
        self.cfg, self.net, self.opt, self.data, self.plan = cfg, net, optimizer, data, plan
        self.ctx, self.device, self.run_files, self.sink, self.cancel = ctx, device, run, sink, cancel
        self.base_lrs = [cfg.lr for _ in optimizer.param_groups]  # not the restored (scheduled) lr
        self.volumes_per_batch = cfg.volumes_per_batch
        self.encoder = net.encoder
        if ctx.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.encoder = torch.nn.parallel.DistributedDataParallel(net.encoder, device_ids=ids)
        self.last_metrics: dict[str, float] = {}
        workers = default_workers(device.type, cfg.data_workers)
        self.feed = BatchFeed(data, cfg.steps, ctx.rank, ctx.world_size, workers, pin=device.type == "cuda")

    def autocast(self):
        if self.device.type == "cuda" and self.cfg.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def run(self, start: int) -> PretrainResult:
        cfg, step, status = self.cfg, start, "completed"
        last_path = None
        if not self.plan.trains:
            last_path = self._save(step, "initial")
            return self._finish(step, last_path, status)
        t_start = time.perf_counter()
        self.run_files.truncate_metrics(start)
        while step < cfg.steps:
            if is_cancelled(self.cancel):
                status = "cancelled"
                break
            metrics = self._one_step(step)
            step += 1
            self._report(step, metrics, t_start, start)
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                last_path = self._save(step, "interval")
        last_path = self._save(step, "cancel" if status == "cancelled" else "final")
        return self._finish(step, last_path, status)

    def _one_step(self, step: int) -> dict[str, float]:
        while True:
            try:
                return self._train_step(step)
            except torch.OutOfMemoryError:
                if self.volumes_per_batch <= 1:
                    raise GCLError("out of GPU memory even with one volume per batch: lower the size") from None
                self.volumes_per_batch //= 2
                self.opt.zero_grad(set_to_none=True)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                emit(self.sink, Log("warning", f"out of GPU memory: batch halved to {self.volumes_per_batch} "
                                               "volumes per step, training goes on"))

    def _train_step(self, step: int) -> dict[str, float]:
        t0 = time.perf_counter()
        cfg = self.cfg
        set_lr(self.opt, self.base_lrs, warmup_cosine(step, cfg.steps, cfg.warmup_fraction))
        batch = self.feed.get(step, self.volumes_per_batch)
        views = batch.views.to(self.device)
        if self.device.type == "cuda":
            views = views.contiguous(memory_format=torch.channels_last)
        inputs = StepInputs(views, batch.theta, {k: batch.labels[k] for k in self.plan.image_labels})
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        self.opt.zero_grad(set_to_none=True)
        no_sync = self.plan.mitigate and cfg.mitigator == "exact" and self.ctx.enabled
        with self.encoder.no_sync() if no_sync else contextlib.nullcontext():
            out = gcl_step(self.net, self.encoder, inputs, cfg, self.plan, self.ctx, gen, self.autocast)
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 10.0)
        self.opt.step()
        m = out.metrics
        m["lr"] = self.opt.param_groups[0]["lr"]
        m["slices_per_s"] = 2 * batch.n_slices / max(time.perf_counter() - t0, 1e-9)
        m["volumes_per_batch"] = self.volumes_per_batch
        return m

    def _report(self, step: int, metrics: dict[str, float], t_start: float, start: int) -> None:
        self.last_metrics = metrics
        if not self.ctx.is_main:
            return
        self.run_files.append_metrics(step, {**metrics, "time": round(time.time(), 3)})  # the report's timings
        elapsed = time.perf_counter() - t_start
        eta = elapsed / (step - start) * (self.cfg.steps - step)
        emit(self.sink, Metric("pretrain", step, metrics))
        emit(self.sink, Progress("pretrain", step, self.cfg.steps, f"loss {metrics['loss']:.3f}", eta))

    def _save(self, step: int, reason: str) -> str | None:
        barrier(self.ctx)
        if not self.ctx.is_main:
            return None
        payload = {
            "format": PRETRAIN_FORMAT,
            "engine_version": __version__,
            "config_json": to_json(self.cfg),
            "step": step,
            "model": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "scheduler": {"name": "warmup_cosine", "step": step, "total": self.cfg.steps},
            "rng": ckpt.rng_state(),
            "meta_labels": list(self.plan.image_labels),
            "method": self.plan.name,
        }
        try:
            self.run_files.save_checkpoint(payload, step)
        except OutputError as exc:
            emit(self.sink, Log("error", str(exc)))
            raise
        path = self.run_files.layout.last_checkpoint  # step files rotate away; this one is always the newest
        emit(self.sink, CheckpointSaved(str(path), step, reason))
        return str(path)

    def _finish(self, step: int, path: str | None, status: str) -> PretrainResult:
        result = PretrainResult(self.cfg.out, path, step, status, list(self.plan.image_labels), self.last_metrics)
        emit(self.sink, Finished("pretrain", status, {"checkpoint": path, "steps": step}))
        return result



__all__ = ["PRETRAIN_FORMAT", "PretrainResult", "pretrain", "read_metrics"]
