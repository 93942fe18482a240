"""Few-shot fine-tuning on the annotated slices only (unannotated slices are unknown, never background).

Dice + class-weighted cross-entropy (class weighting was essential on small organs here), a lower learning
rate for the pre-trained encoder than for the fresh decoder, one-cycle schedule, Preview events as it goes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from gcl_engine import __version__
from gcl_engine.checkpoint import load_checkpoint, save_checkpoint
from gcl_engine.config import (
    FinetuneConfig,
    ModelConfig,
    PreprocessConfig,
    PretrainConfig,
    from_json,
    from_saved_json,
    to_json,
)
from gcl_engine.data.preprocessing import with_context
from gcl_engine.errors import CheckpointError, InputError
from gcl_engine.events import EventSink, Finished, Log, Metric, Preview, Progress, emit
from gcl_engine.losses import class_weights_from_labels, segmentation_loss
from gcl_engine.models import build_unet
from gcl_engine.models.predict import predict_labels
from gcl_engine.run_layout import PRETRAIN_FORMAT, SEGMENTER_FORMAT
from gcl_engine.runtime import CancelToken, configure_cpu_threads, is_cancelled, seed_everything, select_device
from gcl_engine.training.extra_targets import build_extra_targets
from gcl_engine.training.finetune_data import AnnotatedSlices, SegmentationAugment, load_annotated
from gcl_engine.training.heldout import heldout_score
from gcl_engine.training.schedules import one_cycle, set_lr


@dataclass
class FinetuneResult:
    model_path: str
    steps_done: int
    status: str
    annotated_slices: list[int]
    class_names: list[str]
    last_loss: float
    seconds_to_first_preview: float | None = None


def finetune(cfg: FinetuneConfig, on_event: EventSink | None = None, cancel: CancelToken | None = None,
             labels_array: np.ndarray | None = None) -> FinetuneResult:
    cfg.validate()
    t0 = time.perf_counter()
    emit(on_event, Progress("finetune", 0, cfg.steps, "loading the image and the annotations"))
    cfg, start_state = _start_state(cfg, on_event)
    cfg = replace(cfg, model=replace(cfg.model, in_channels=cfg.preprocess.input_channels))
    device = select_device(cfg.device)
    if device.type == "cpu":
        configure_cpu_threads(cfg.threads)
    rng = seed_everything(cfg.seed)
    data = load_annotated(cfg, labels_array)
    model, prior_steps = _initial_model(cfg, start_state, len(data.class_names))
    model.to(device)
    groups = [{"params": model.encoder.parameters(), "lr": cfg.lr_encoder},
              {"params": model.decoder.parameters(), "lr": cfg.lr_decoder}]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    base_lrs = [cfg.lr_encoder, cfg.lr_decoder]
    inputs = with_context(data.slices, cfg.preprocess.context_slices)  # (n, C, S, S)
    x_all, y_all = inputs[data.annotated], data.labels[data.annotated]
    weights = class_weights_from_labels(y_all, len(data.class_names)).to(device) if cfg.class_weighted_ce else None
    augment = SegmentationAugment(cfg.preprocess.size) if cfg.augment else None
    g = data.image.geometry
    extra = build_extra_targets(cfg, model, inputs, data.source_labels, data.annotated,
                                start_state is not None and start_state["format"] == SEGMENTER_FORMAT,
                                g.direction, g.spacing)
    extra_batch = max(1, cfg.batch_size // 2)
    history = _heldout_history(start_state, model, inputs, data, cfg, on_event)
    status, step, loss_value, first_preview = "completed", 0, float("nan"), None
    model.train()
    while step < cfg.steps:
        if is_cancelled(cancel):
            status = "cancelled"
            break
        frozen = step < cfg.freeze_encoder_steps  # lr 0: AdamW neither steps nor decays the encoder
        set_lr(opt, [0.0 if frozen else base_lrs[0], base_lrs[1]], one_cycle(step, cfg.steps))
        idx = torch.as_tensor(rng.integers(0, len(data.annotated), size=cfg.batch_size))
        x, y = x_all[idx], y_all[idx]
        x, y = augment(x, y, cfg.seed * 100_003 + step) if augment else (x, y)
        loss = segmentation_loss(model(x.to(device)), y.to(device), weights, cfg.dice_weight, cfg.ce_weight)
        if extra is not None:
            ex, ey = extra.draw(rng, extra_batch)
            ex, ey = augment(ex, ey, cfg.seed * 100_003 + step + 50_000) if augment else (ex, ey)
            loss = loss + extra.loss_weight * segmentation_loss(model(ex.to(device)), ey.to(device), weights,
                                                                cfg.dice_weight, cfg.ce_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_value = float(loss.detach())
        emit(on_event, Metric("finetune", step, {"loss": loss_value, "lr_decoder": opt.param_groups[1]["lr"]}))
        emit(on_event, Progress("finetune", step, cfg.steps, f"loss {loss_value:.3f}"))
        if cfg.preview_slices and (step % cfg.preview_every == 0 or step == cfg.steps):
            _emit_preview(model, data, inputs, cfg, step, on_event)
            first_preview = first_preview or time.perf_counter() - t0
    path = save_segmenter(model, cfg, data, prior_steps + step, history)
    emit(on_event, Finished("finetune", status, {"model": str(path), "steps": step}))
    return FinetuneResult(str(path), step, status, data.annotated, data.class_names, loss_value, first_preview)


def _start_state(cfg: FinetuneConfig, on_event) -> tuple[FinetuneConfig, dict | None]:
    """The checkpoint to start from, and the config with that checkpoint's network (and, to continue a
    fine-tuned model, its preprocessing): a pre-trained encoder fixes the width and depth."""
    if not (cfg.init_model or cfg.pretrained):
        return cfg, None
    if cfg.init_model:
        state = load_checkpoint(cfg.init_model, SEGMENTER_FORMAT)
        model = from_json(ModelConfig, state["model_config_json"])
        pre = from_saved_json(PreprocessConfig, state["preprocess_json"])
    else:
        state = load_checkpoint(cfg.pretrained, PRETRAIN_FORMAT)
        saved = from_saved_json(PretrainConfig, state["config_json"])
        model, pre = saved.model, cfg.preprocess
    if (model, pre) != (cfg.model, cfg.preprocess):
        emit(on_event, Log("info", f"using the network of {Path(cfg.init_model or cfg.pretrained).name}: "
                                   f"base {model.base_channels}, {model.levels} levels, {pre.size} px"))
    return replace(cfg, model=model, preprocess=pre), state


def _initial_model(cfg: FinetuneConfig, state: dict | None, num_classes: int) -> tuple[torch.nn.Module, int]:
    model = build_unet(cfg.model, num_classes)
    if state is None:
        return model, 0
    if state["format"] == SEGMENTER_FORMAT:
        if state["num_classes"] != num_classes:
            raise CheckpointError(f"{cfg.init_model}: a model of {state['num_classes']} classes, the labels need "
                                  f"{num_classes}; start a new fine-tune")
        _load(model, state["model"], cfg.init_model)
        return model, int(state.get("steps", 0))
    encoder = {k[len("encoder."):]: v for k, v in state["model"].items() if k.startswith("encoder.")}
    _load(model.encoder, inflate_input(encoder, cfg.model.in_channels), cfg.pretrained)
    decoder = {k[len("decoder."):]: v for k, v in state["model"].items() if k.startswith("decoder.")}
    if decoder:  # pre-trained with pixel_features='decoder': its first up-blocks; the rest and the head start fresh
        _load(model.decoder, decoder, cfg.pretrained, partial=True)
    return model, 0


def inflate_input(encoder_state: dict, in_channels: int) -> dict:
    """A 2D pre-trained encoder for 2.5D input: the first conv's weights go to the centre channel, the
    neighbour channels start at zero, so the network starts out computing exactly what was pre-trained."""
    key = next(k for k in encoder_state if k.endswith("conv.weight"))
    weight = encoder_state[key]
    if weight.shape[1] == in_channels:
        return encoder_state
    grown = torch.zeros((weight.shape[0], in_channels, *weight.shape[2:]), dtype=weight.dtype)
    grown[:, in_channels // 2] = weight[:, 0]
    return {**encoder_state, key: grown}


def _load(module: torch.nn.Module, state: dict, path: str, partial: bool = False) -> None:
    """Load ``state`` into ``module``; ``partial``: some of the module's weights may be absent, none extra."""
    try:
        result = module.load_state_dict(state, strict=not partial)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit this model (other width, depth or classes)") from exc
    if result.unexpected_keys:
        raise CheckpointError(f"{path}: weights do not fit this model ({len(result.unexpected_keys)} unknown)")


def _emit_preview(model, data: AnnotatedSlices, inputs: torch.Tensor, cfg: FinetuneConfig, step: int,
                  on_event) -> None:
    wanted = [s for s in cfg.preview_slices if 0 <= s < data.slices.shape[0]]
    if not wanted:
        return
    masks = predict_labels(model, inputs[wanted], data.layout)
    emit(on_event, Preview(step, wanted, [m.numpy().astype(np.uint16) for m in masks]))


def _heldout_history(start_state: dict | None, model, inputs, data: AnnotatedSlices, cfg: FinetuneConfig,
                     on_event) -> list[dict]:
    """The starting model's held-out scores so far, plus its score on the slices painted since it was saved."""
    if start_state is None or start_state["format"] != SEGMENTER_FORMAT:
        return []
    history = list(start_state.get("heldout", []))
    seen = set(start_state.get("annotated_slices", []))
    entry = heldout_score(model, inputs, data.layout, data.source_labels, cfg.preprocess.axis,
                          [k for k in data.annotated if k not in seen], cfg.unknown_value)
    if entry is not None:
        history.append({**entry, "painted_before": len(seen)})
        emit(on_event, Metric("finetune", 0, {"heldout_dice": entry["dice"], "heldout_slices": len(entry["slices"])}))
    return history


def save_segmenter(model, cfg: FinetuneConfig, data: AnnotatedSlices, steps: int,
                   heldout: list[dict] | None = None) -> Path:
    if not cfg.out:
        raise InputError(None, "no output path for the model (--out)")
    payload = {
        "format": SEGMENTER_FORMAT,
        "engine_version": __version__,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config_json": to_json(cfg.model),
        "preprocess_json": to_json(cfg.preprocess),
        "num_classes": len(data.class_names),
        "class_names": list(data.class_names),
        "annotated_slices": list(data.annotated),
        "steps": steps,
        "pretrained": Path(cfg.pretrained).name if cfg.pretrained else "",
        "heldout": list(heldout or []),  # the model before each fine-tune, scored on the slices painted since
    }
    return save_checkpoint(payload, cfg.out)

