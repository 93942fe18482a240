"""The layout of a run folder: config.json, metrics.jsonl, checkpoints/step_*.pt, last.pt, cache/."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gcl_engine.errors import CheckpointError, OutputError
from gcl_engine.io.atomic import atomic_write_text
from gcl_engine.training.checkpoint import load_checkpoint, save_checkpoint

KEEP_CHECKPOINTS = 3


class RunFiles:
    def __init__(self, out: str | Path, writable: bool = True):
        if not str(out):
            raise OutputError("no run folder given (--out)")
        self.root = Path(out)
        if writable:
            try:
                (self.root / "checkpoints").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"{self.root}: cannot create the run folder ({exc.strerror})") from exc
            if not os.access(self.root, os.W_OK):
                raise OutputError(f"{self.root}: the run folder is not writable")

    def cache_dir(self, configured: str | None) -> Path:
        return Path(configured) if configured else self.root / "cache"

    def write_config(self, text: str) -> None:
        atomic_write_text(self.root / "config.json", text)

    def save_checkpoint(self, payload: dict, step: int) -> Path:
        path = save_checkpoint(payload, self.root / "checkpoints" / f"step_{step:07d}.pt")
        save_checkpoint(payload, self.root / "last.pt")
        for old in sorted((self.root / "checkpoints").glob("step_*.pt"))[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
        return path

    def latest_checkpoint(self, fmt: str) -> dict | None:
        """The newest checkpoint that loads; a corrupt ``last.pt`` falls back to the step files."""
        candidates = [self.root / "last.pt", *sorted((self.root / "checkpoints").glob("step_*.pt"), reverse=True)]
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
        path = self.root / "metrics.jsonl"
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
        with open(self.root / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, **metrics}) + "\n")

