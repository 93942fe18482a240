"""Process-level helpers: cancel token, device choice, seeding, thread count.

torch is imported lazily so that :mod:`gcl_engine.io` and the CLI's ``scan`` stay light.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass

import numpy as np

from gcl_engine.errors import Cancelled, ConfigError


class CancelToken:
    """Thread-safe flag the caller sets to ask long work to stop at its next safe point."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def is_cancelled(token: CancelToken | None) -> bool:
    return token is not None and token.cancelled


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda" | "mps" | "cpu"
    name: str
    memory_gb: float | None


def select_device(requested: str = "auto"):
    """Return a ``torch.device``: auto picks cuda, then mps, then cpu; an explicit choice must exist."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but no CUDA GPU is available (torch CPU build?)")
    if requested == "mps" and not (torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' was requested but Apple MPS is not available")
    if requested not in ("cpu", "mps") and not requested.startswith("cuda"):
        raise ConfigError(f"unknown device {requested!r}: use auto, cpu, cuda or mps")
    return torch.device(requested)


def describe_devices() -> list[DeviceInfo]:
    """Every device this process could train on, for the GUI's device picker."""
    import torch

    found = [DeviceInfo("cpu", f"CPU ({os.cpu_count()} cores)", None)]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            found.insert(0, DeviceInfo(f"cuda:{i}", props.name, props.total_memory / 2**30))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.insert(0, DeviceInfo("mps", "Apple GPU (MPS)", None))
    return found


def seed_everything(seed: int) -> np.random.Generator:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def default_threads(cores: int | None = None) -> int:
    """CPU threads of engine work (torch and onnxruntime) when none are asked for: half the cores, at least one.

    torch's and onnxruntime's own default (every core) collapses as soon as anything else runs: their threads
    wait for each other at every operation, so one busy core stalls all of them (measured on 2 cores with one
    competing process: benchmarks/results/threads_under_load.md). Half the cores leaves the user's other work,
    and the GUI's window, room without the job noticing it; an idle machine loses little.
    """
    return max(1, (cores or os.cpu_count() or 2) // 2)


def configure_cpu_threads(threads: int | None = None) -> int:
    """torch's process-wide thread count: ``threads``, or the engine's rule (:func:`default_threads`)."""
    import torch

    n = threads or default_threads()
    torch.set_num_threads(n)
    return n


class FileCancelToken(CancelToken):
    """Cancelled when a file appears: how a GUI asks a child process to stop, on every platform."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    @property
    def cancelled(self) -> bool:
        if not super().cancelled and os.path.exists(self.path):
            self.cancel()
        return super().cancelled
