"""Whole-volume prediction with a fine-tuned model, by torch or onnxruntime, back in the source geometry.

The model file carries its preprocessing, so a volume is normalised and resampled exactly as in training;
probabilities are resampled back to the source in-plane grid before the argmax.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gcl_engine.checkpoint import load_checkpoint, model_from_state
from gcl_engine.config import PredictConfig, PreprocessConfig, from_saved_json
from gcl_engine.data.preprocessing import prepare_volume_slices, slice_layout
from gcl_engine.errors import Cancelled, InputError
from gcl_engine.events import EventSink, Progress, emit
from gcl_engine.inference.postprocess import keep_largest_component, smallest_label_dtype
from gcl_engine.io.volume import Geometry, Volume
from gcl_engine.run_layout import ONNX_SUFFIX, SEGMENTER_FORMAT
from gcl_engine.runtime import CancelToken, configure_cpu_threads, is_cancelled, select_device


@dataclass
class Prediction:
    labels: np.ndarray  # same shape and axis order as the source volume's array
    class_names: list[str]
    geometry: Geometry
    probabilities: np.ndarray | None = None  # (K, *shape) float16 when asked for


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
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime picks (one per physical core)
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
        if len(shape) != 4 or shape[1] not in (1, "channels"):
            raise InputError(path, f"unexpected model input shape {shape}: expected (batch, 1, H, W)")
        return cls(backend, json.loads(meta["gcl_class_names"]), pre, cfg)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def predict(self, volume: Volume, on_event: EventSink | None = None, cancel: CancelToken | None = None,
                keep_probabilities: bool = False) -> Prediction:
        axis = self.preprocess.axis
        if volume.array.ndim != 3:
            raise InputError(volume.meta.source, f"expected a 3D volume, got shape {volume.array.shape}")
        g = volume.geometry
        slices = prepare_volume_slices(volume.array, volume.meta.modality, self.preprocess, g.direction,
                                       g.spacing).numpy()
        layout = slice_layout(self.preprocess, volume.array.shape, g.direction, g.spacing)
        in_plane = layout.stored_shape
        n, bs = slices.shape[0], self.config.batch_size
        dtype = smallest_label_dtype(len(self.class_names) - 1)
        argmax = np.empty((n, *in_plane), dtype)
        probs = [] if keep_probabilities else None
        for i in range(0, n, bs):  # one batch of full-resolution probabilities in memory at a time
            if is_cancelled(cancel):
                raise Cancelled("prediction cancelled")
            logits = self.backend.logits(np.ascontiguousarray(slices[i:i + bs, None], dtype=np.float32))
            soft = torch.softmax(logits, 1)
            for j in range(soft.shape[0]):  # one slice of K full-resolution maps at a time (118 x 512^2 is large)
                prob = layout.to_source(soft[j:j + 1])
                argmax[i + j] = prob[0].argmax(0).numpy()
                if probs is not None:
                    probs.append(prob.numpy().astype(np.float16))
            emit(on_event, Progress("predict", min(i + bs, n), n))
        labels = np.moveaxis(argmax, 0, axis)
        if self.config.largest_component:
            labels = keep_largest_component(labels)
        kept = np.moveaxis(np.concatenate(probs), 0, axis + 1) if probs is not None else None
        return Prediction(labels, self.class_names, volume.geometry, kept)

