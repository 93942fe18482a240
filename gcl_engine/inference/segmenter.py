"""Whole-volume prediction with a fine-tuned model, by torch or onnxruntime, back in the source geometry.

The model file carries its preprocessing, so a volume is normalised and resampled exactly as in training;
probabilities are resampled back to the source in-plane grid before the argmax (for labels alone, only at class
boundaries: data/label_resample.py gives the same labels without every class's full-size map).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gcl_engine.checkpoint import load_checkpoint, model_from_state
from gcl_engine.config import PredictConfig, PreprocessConfig, from_saved_json
from gcl_engine.data.preprocessing import prepare_volume_slices, slice_layout, with_context
from gcl_engine.data.slice_layout import SliceLayout
from gcl_engine.errors import Cancelled, InputError
from gcl_engine.events import EventSink, Progress, emit
from gcl_engine.inference.fusion import PaintedLabels, plan_fusion
from gcl_engine.inference.postprocess import keep_largest_component, smallest_label_dtype
from gcl_engine.io.volume import Geometry, Volume
from gcl_engine.run_layout import ONNX_SUFFIX, SEGMENTER_FORMAT
from gcl_engine.runtime import CancelToken, configure_cpu_threads, default_threads, is_cancelled, select_device


@dataclass
class Prediction:
    labels: np.ndarray  # same shape and axis order as the source volume's array
    class_names: list[str]
    geometry: Geometry
    probabilities: np.ndarray | None = None  # (K, *shape) float16 when asked for
    uncertainty: np.ndarray | None = None  # (*shape) float16 normalised entropy in [0, 1] when asked for


class _TorchBackend:
    name = "torch"

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.model, self.device = model.to(device).eval(), device

    @torch.no_grad()
    def logits(self, batch: np.ndarray) -> torch.Tensor:
        return self.model(torch.from_numpy(batch).to(self.device)).float().cpu()


class _OnnxBackend:
    name = "onnxruntime"

    def __init__(self, path: Path, device: str, threads: int | None = None):
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        # onnxruntime-gpu lists the CUDA provider even without a GPU or CUDA libraries: ask torch first
        if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or default_threads()  # not onnxruntime's every core: runtime.py
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise InputError(path, f"not a loadable ONNX model ({str(exc).splitlines()[0][:120]})") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.providers = self.session.get_providers()

    def logits(self, batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input_name: batch})[0])


class Segmenter:
    """``Segmenter.load(path)`` then ``predict(volume)``; path is a fine-tuned ``.pt`` or an exported ``.onnx``."""

    def __init__(self, backend, class_names: list[str], preprocess: PreprocessConfig, config: PredictConfig):
        self.backend, self.class_names, self.preprocess, self.config = backend, class_names, preprocess, config

    @classmethod
    def load(cls, path: str | Path, config: PredictConfig | None = None) -> Segmenter:
        cfg = config or PredictConfig()
        cfg.validate()
        p = Path(path)
        if p.suffix == ONNX_SUFFIX:
            return cls._load_onnx(p, cfg)
        state = load_checkpoint(p, SEGMENTER_FORMAT)
        model = model_from_state(state)
        pre = from_saved_json(PreprocessConfig, state["preprocess_json"])
        if cfg.backend == "onnxruntime":
            raise InputError(p, "the onnxruntime backend needs an .onnx file: export the model first")
        if cfg.threads:
            configure_cpu_threads(cfg.threads)
        return cls(_TorchBackend(model, select_device(cfg.device)), list(state["class_names"]), pre, cfg)

    @classmethod
    def _load_onnx(cls, path: Path, cfg: PredictConfig) -> Segmenter:
        if cfg.backend == "torch":
            raise InputError(path, "the torch backend needs a .pt model file")
        backend = _OnnxBackend(path, cfg.device, cfg.threads)
        meta = backend.session.get_modelmeta().custom_metadata_map
        if "gcl_preprocess" not in meta:
            raise InputError(path, "an ONNX model not exported by GCL Studio (no preprocessing metadata)")
        pre = from_saved_json(PreprocessConfig, meta["gcl_preprocess"])
        shape = backend.session.get_inputs()[0].shape
        if len(shape) != 4 or shape[1] not in (pre.input_channels, "channels"):
            raise InputError(path, f"unexpected model input shape {shape}: expected "
                                   f"(batch, {pre.input_channels}, H, W)")
        return cls(backend, json.loads(meta["gcl_class_names"]), pre, cfg)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def _check(self, volume: Volume) -> None:
        if volume.array.ndim != 3:
            raise InputError(volume.meta.source, f"expected a 3D volume, got shape {volume.array.shape}")

    def network_inputs(self, volume: Volume) -> tuple[np.ndarray, SliceLayout]:
        """(n, C, size, size) network inputs (normalised slices, with their neighbours as channels in 2.5D),
        and how to map outputs back."""
        self._check(volume)
        g = volume.geometry
        slices = prepare_volume_slices(volume.array, volume.meta.modality, self.preprocess, g.direction, g.spacing)
        inputs = with_context(slices, self.preprocess.context_slices).numpy()
        return inputs, slice_layout(self.preprocess, volume.array.shape, g.direction, g.spacing)

    def softmax_batches(self, slices: np.ndarray, cancel: CancelToken | None = None,
                        on_event: EventSink | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """(first slice index, (b, K, size, size) probabilities) per batch of (n, C, size, size) inputs, at the
        network's resolution;
        averaged over shifted copies of the input when ``config.tta_shift`` is set."""
        return self._batches(slices, cancel, on_event, self._softmax)

    def _batches(self, slices: np.ndarray, cancel: CancelToken | None, on_event: EventSink | None,
                 network) -> Iterator[tuple[int, torch.Tensor]]:
        n, bs = slices.shape[0], self.config.batch_size
        for i in range(0, n, bs):
            if is_cancelled(cancel):
                raise Cancelled("prediction cancelled")
            batch = np.ascontiguousarray(slices[i:i + bs], dtype=np.float32)
            yield i, network(batch)
            emit(on_event, Progress("predict", min(i + bs, n), n))

    def _softmax(self, batch: np.ndarray) -> torch.Tensor:
        s = self.config.tta_shift
        if not s:
            return torch.softmax(self.backend.logits(batch), 1)
        total = None
        for dy, dx in ((0, 0), (s, 0), (-s, 0), (0, s), (0, -s)):  # shifted copies, shifted back: exact inverse
            moved = np.roll(batch, (dy, dx), axis=(2, 3))
            soft = torch.softmax(self.backend.logits(np.ascontiguousarray(moved)), 1).roll((-dy, -dx), dims=(2, 3))
            total = soft if total is None else total + soft
        return total / 5.0

    def predict(self, volume: Volume, on_event: EventSink | None = None, cancel: CancelToken | None = None,
                keep_probabilities: bool = False, painted: PaintedLabels | None = None,
                keep_uncertainty: bool = False) -> Prediction:
        """Labels of every voxel of ``volume``. With ``painted`` (what the user painted on this volume), painted
        voxels keep their labels and the slices between painted slices combine the network with the
        interpolation of the painted slices (``config.interpolation_reach_mm``; inference/fusion.py).
        ``keep_uncertainty``: the network's per-voxel entropy over the classes, 0 (sure) to 1 (uniform); 0 on
        painted voxels."""
        axis = self.preprocess.axis
        slices, layout = self.network_inputs(volume)
        plan = None if painted is None else plan_fusion(
            painted, volume.array.shape, axis, volume.geometry.spacing, self.config.interpolation_reach_mm,
            self.config.interpolation_method, volume.meta.source)
        in_plane = layout.stored_shape
        dtype = smallest_label_dtype(len(self.class_names) - 1)
        argmax = np.empty((slices.shape[0], *in_plane), dtype)
        probs = [] if keep_probabilities else None
        entropy = np.zeros(argmax.shape, np.float16) if keep_uncertainty else None
        norm = float(np.log(max(2, len(self.class_names))))
        labels_only = self.config.upsample == "labels" and not keep_probabilities and not keep_uncertainty
        raw = labels_only and not self.config.tta_shift  # logits: softmax only where interpolation needs it
        network = self.backend.logits if raw else self._softmax
        for i, out in self._batches(slices, cancel, on_event, network):  # one batch of network outputs at a time
            for j in range(out.shape[0]):  # one slice of K full-resolution maps at a time (118 x 512^2 is large)
                if labels_only and (plan is None or plan.weight[i + j] == 0):
                    found = layout.to_source_labels(out[j:j + 1], dtype, logits=raw)[0]
                    argmax[i + j] = found if plan is None else plan.keep_painted(i + j, found)
                    continue
                prob = layout.to_source(torch.softmax(out[j:j + 1], 1) if raw else out[j:j + 1])
                argmax[i + j] = prob[0].argmax(0).numpy() if plan is None else plan.fuse(i + j, prob[0])
                if probs is not None:
                    probs.append(prob.numpy().astype(np.float16))
                if entropy is not None:
                    h = (-(prob[0] * torch.log(prob[0].clamp_min(1e-8))).sum(0) / norm).clamp(0, 1).numpy()
                    if plan is not None and plan.is_painted(i + j):
                        h[plan.known[i + j]] = 0.0
                    entropy[i + j] = h
        labels = np.moveaxis(argmax, 0, axis)
        if self.config.largest_component:
            labels = keep_largest_component(labels)
        kept = np.moveaxis(np.concatenate(probs), 0, axis + 1) if probs is not None else None
        uncertainty = np.moveaxis(entropy, 0, axis) if entropy is not None else None
        return Prediction(labels, self.class_names, volume.geometry, kept, uncertainty)

