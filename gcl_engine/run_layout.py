"""Where a run's and a model's files live: the one module that spells their names.

A pre-training run folder holds one ``config.json`` (what the GUI starts the job with and what the job
records: the same file), ``metrics.jsonl``, ``last.pt`` (always the newest checkpoint), the rotating
``checkpoints/step_NNNNNNN.pt`` and, unless configured elsewhere, the slice ``cache/``. Fine-tuned models
are ``.pt`` files and their exports ``.onnx``. The training code, the CLI and the app's panels all ask here;
none spells a file name itself. Pure Python (no torch): the GUI reads run folders without loading it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gcl_engine.config import PretrainConfig, load_json
from gcl_engine.errors import GCLError

PRETRAIN_FORMAT = "gcl-pretrain"  # the "format" tag inside a pre-training checkpoint
SEGMENTER_FORMAT = "gcl-segmenter"  # ... and inside a fine-tuned model
MODEL_SUFFIX = ".pt"
ONNX_SUFFIX = ".onnx"
JOB_KINDS = ("pretrain", "finetune", "map", "report")  # map, report: what pre-training learnt (insight)


@dataclass(frozen=True)
class RunLayout:
    """The files of one pre-training run folder (nothing is created by naming them)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def last_checkpoint(self) -> Path:
        return self.root / "last.pt"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def insight(self) -> Path:
        """Files derived from the run by the insight tools: embeddings, the fit calibration, the map."""
        return self.root / "insight"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def step_checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:07d}{MODEL_SUFFIX}"

    def step_checkpoints(self) -> list[Path]:
        """The rotating step checkpoints, oldest first."""
        return sorted(self.checkpoints.glob(f"step_*{MODEL_SUFFIX}"))

    def has_checkpoint(self) -> bool:
        return self.last_checkpoint.is_file()

    def is_resumable(self) -> bool:
        """A run the GUI can resume: its config and at least one checkpoint are there."""
        return self.config.is_file() and self.has_checkpoint()


def run_of_checkpoint(checkpoint: str | Path) -> RunLayout | None:
    """The run folder of a pre-training checkpoint (``RUN/last.pt`` or ``RUN/checkpoints/step_N.pt``)."""
    path = Path(checkpoint)
    for folder in (path.parent, path.parent.parent):
        if RunLayout(folder).config.is_file():
            return RunLayout(folder)
    return None


def run_config_of(checkpoint: str | Path) -> PretrainConfig | None:
    """The pre-training config a checkpoint was made with (its network shape), or None when unknown."""
    run = run_of_checkpoint(checkpoint)
    if run is None:
        return None
    try:
        return load_json(PretrainConfig, run.config)
    except (GCLError, ValueError, TypeError, OSError):
        return None


def job_config_path(kind: str, workdir: str | Path) -> Path:
    """Where a job's config is written before its child starts: a pre-training run's own ``config.json``
    (so the run folder holds one config), a fine-tune's ``finetune-config.json`` in its job folder."""
    if kind not in JOB_KINDS:
        raise GCLError(f"unknown job kind {kind!r}")
    return RunLayout(workdir).config if kind == "pretrain" else Path(workdir) / f"{kind}-config.json"


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Rows of a run's ``metrics.jsonl`` (lines that do not parse, as a crash may leave, are skipped)."""
    path = RunLayout(run_dir).metrics
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def is_torch_model(path: str | Path) -> bool:
    return Path(path).suffix == MODEL_SUFFIX


def is_onnx_model(path: str | Path) -> bool:
    return Path(path).suffix == ONNX_SUFFIX
