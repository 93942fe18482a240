"""Checkpoints: atomic writes, ``weights_only`` loads, a format tag checked on load, the model they hold.

Nothing but tensors, numbers, strings, lists and dicts is stored, so ``torch.load(weights_only=True)``
reads every checkpoint we write and refuses any pickle of arbitrary objects. Below training, inference and
export (all three read checkpoints; none of them imports another); file names are :mod:`run_layout`'s.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from gcl_engine.config import ModelConfig, from_json
from gcl_engine.errors import CheckpointError, OutputError
from gcl_engine.io.atomic import atomic_write_bytes


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Serialise to memory, then temp file + fsync + rename: a crash leaves the old file intact."""
    target = Path(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_bytes(target, buffer.getvalue())
    except OutputError as exc:
        raise OutputError(f"checkpoint not written, the previous one is intact: {exc}") from exc
    except OSError as exc:
        raise OutputError(f"{target}: checkpoint not written ({exc.strerror or exc})") from exc


def load_checkpoint(path: str | Path, expected_format: str | None = None) -> dict[str, Any]:
    """Load with ``weights_only=True``; corrupt, untrusted or foreign files raise CheckpointError."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{p}: refused: the file holds arbitrary Python objects, not weights") from exc
    except Exception as exc:  # torch raises many types for damaged files (IndexError, EOFError, ...)
        kind = exc.__class__.__name__
        raise CheckpointError(f"{p}: not a readable checkpoint (corrupt or truncated: {kind})") from exc
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError(f"{p}: not a GCL Studio checkpoint")
    if expected_format is not None and payload["format"] != expected_format:
        raise CheckpointError(f"{p}: a {payload['format']!r} file, expected {expected_format!r}")
    return payload


def rng_state() -> dict[str, Any]:
    import random

    import numpy as np

    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype("int64")),
        "numpy_pos": int(np_state[2]),
        "python": list(random.getstate()[1]),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype("uint32"), state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))


def model_from_state(state: dict[str, Any]) -> torch.nn.Module:
    """The U-Net of a fine-tuned model's checkpoint (``SEGMENTER_FORMAT``), weights loaded."""
    from gcl_engine.models import build_unet

    cfg = from_json(ModelConfig, state["model_config_json"])
    model = build_unet(cfg, int(state["num_classes"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError("model weights do not match their stored configuration") from exc
    return model
