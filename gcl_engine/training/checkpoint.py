"""Checkpoints: atomic writes, ``weights_only`` loads, and a format tag checked on load.

Nothing but tensors, numbers, strings, lists and dicts is stored, so ``torch.load(weights_only=True)``
reads every checkpoint we write and refuses any pickle of arbitrary objects.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from gcl_engine.errors import CheckpointError, OutputError


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Serialise to memory, then temp file + fsync + rename: a crash leaves the old file intact."""
    target = Path(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"{target.parent}: cannot write checkpoints here ({exc.strerror})") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buffer.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        reason = "disk full" if exc.errno == 28 else (exc.strerror or str(exc))
        raise OutputError(f"{target}: checkpoint not written ({reason}); the previous one is intact") from exc
    return target


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
