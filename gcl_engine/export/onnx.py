"""Export a fine-tuned model to ONNX with its class names and preprocessing, and check parity."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gcl_engine.audit import record_export
from gcl_engine.checkpoint import load_checkpoint, model_from_state
from gcl_engine.errors import OutputError
from gcl_engine.io.atomic import atomic_write
from gcl_engine.run_layout import ONNX_SUFFIX, SEGMENTER_FORMAT


@dataclass
class OnnxExportReport:
    path: str
    max_abs_diff: float  # largest |torch - onnxruntime| logit difference on a test batch
    providers: list[str]
    opset: int


def export_onnx(model_path: str | Path, out_path: str | Path, opset: int = 17, check: bool = True) -> OnnxExportReport:
    state = load_checkpoint(model_path, SEGMENTER_FORMAT)
    model = model_from_state(state).eval()
    pre = json.loads(state["preprocess_json"])
    channels = 1 + 2 * int(pre.get("context_slices", 0))
    example = torch.randn(2, channels, pre["size"], pre["size"], generator=torch.Generator().manual_seed(0))
    out = Path(out_path)
    if out.suffix != ONNX_SUFFIX:
        raise OutputError(f"{out}: the ONNX file name must end in .onnx")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        torch.onnx.export(model, (example,), str(raw), input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset,
                          dynamo=False)
        _attach_metadata(raw, state)
        with atomic_write(out) as tmp_out:
            Path(tmp_out).write_bytes(raw.read_bytes())
    diff, providers = _parity(model, out, example) if check else (float("nan"), [])
    record_export("onnx", out, [model_path], model_path)
    return OnnxExportReport(str(out), diff, providers, opset)


def _attach_metadata(path: Path, state: dict) -> None:
    import onnx

    proto = onnx.load(str(path))
    meta = {
        "gcl_format": SEGMENTER_FORMAT,
        "gcl_class_names": json.dumps(list(state["class_names"])),
        "gcl_preprocess": state["preprocess_json"],
        "gcl_engine_version": state["engine_version"],
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _parity(model: torch.nn.Module, path: Path, example: torch.Tensor) -> tuple[float, list[str]]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": example.numpy()})[0]
    with torch.no_grad():
        ref = model(example).numpy()
    return float(np.abs(got - ref).max()), session.get_providers()
