"""Writing a run folder during training: config, checkpoints (rotated), metrics; names from :mod:`run_layout`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gcl_engine.checkpoint import load_checkpoint, save_checkpoint
from gcl_engine.errors import CheckpointError, OutputError
from gcl_engine.io.atomic import atomic_write_text
from gcl_engine.run_layout import RunLayout

KEEP_CHECKPOINTS = 3


class RunFiles:
    def __init__(self, out: str | Path, writable: bool = True):
        if not str(out):
            raise OutputError("no run folder given (--out)")
        self.layout = RunLayout(out)
        self.root = self.layout.root
        if writable:
            try:
                self.layout.checkpoints.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"{self.root}: cannot create the run folder ({exc.strerror})") from exc
            if not os.access(self.root, os.W_OK):
                raise OutputError(f"{self.root}: the run folder is not writable")

    def cache_dir(self, configured: str | None) -> Path:
        return Path(configured) if configured else self.layout.cache

    def write_config(self, text: str) -> None:
        atomic_write_text(self.layout.config, text)

    def save_checkpoint(self, payload: dict, step: int) -> Path:
        path = save_checkpoint(payload, self.layout.step_checkpoint(step))
        save_checkpoint(payload, self.layout.last_checkpoint)
        for old in self.layout.step_checkpoints()[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
        return path

    def latest_checkpoint(self, fmt: str) -> dict | None:
        """The newest checkpoint that loads; a corrupt last checkpoint falls back to the step files."""
        candidates = [self.layout.last_checkpoint, *reversed(self.layout.step_checkpoints())]
        errors = []
        for path in candidates:
            if not path.exists():
                continue
            try:
                return load_checkpoint(path, fmt)
            except CheckpointError as exc:
                errors.append(str(exc))
        if errors:
            raise CheckpointError("no loadable checkpoint in the run folder: " + "; ".join(errors))
        return None

    def truncate_metrics(self, step: int) -> None:
        """On resume, drop metrics of steps after the checkpoint, so the curve has no duplicates."""
        path = self.layout.metrics
        if not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError):
                continue
        atomic_write_text(path, "".join(k + "\n" for k in kept))

    def append_metrics(self, step: int, metrics: dict[str, float]) -> None:
        with open(self.layout.metrics, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, **metrics}) + "\n")
