"""The engine's public facade: every GUI action and CLI command is one call here.

The app imports only this module (and the config / event types it re-exports), never torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gcl_engine import __version__
from gcl_engine.config import (
    METHODS,
    FinetuneConfig,
    ModelConfig,
    PredictConfig,
    PreprocessConfig,
    PretrainConfig,
    from_dict,
    from_json,
    load_json,
    to_dict,
    to_json,
)
from gcl_engine.data.interpolation import METHODS as INTERPOLATION_METHODS
from gcl_engine.data.interpolation import interpolate_between as interpolate_slices
from gcl_engine.data.interpolation import interpolate_volume
from gcl_engine.data.painted import UNKNOWN_LABEL, painted_slices
from gcl_engine.data.scan import ScanResult, VolumeRecord
from gcl_engine.data.scan import scan_folder as _scan_folder
from gcl_engine.errors import Cancelled, CheckpointError, ConfigError, GCLError, InputError, OutputError
from gcl_engine.events import (
    CheckpointSaved,
    Event,
    EventSink,
    Finished,
    Log,
    Metric,
    Preview,
    Progress,
    event_from_json,
)
from gcl_engine.export.onnx import OnnxExportReport, export_onnx
from gcl_engine.inference.fusion import PaintedLabels
from gcl_engine.inference.segmenter import Prediction, Segmenter
from gcl_engine.inference.suggest import SliceScore, rank_slices
from gcl_engine.insight import files as _insight_files
from gcl_engine.insight.config import MapConfig, ReportConfig
from gcl_engine.io.label_names import LabelNames, read_label_names
from gcl_engine.io.readers import load_volume
from gcl_engine.io.sample_data import sample_data_dir, sample_paths
from gcl_engine.io.volume import Geometry, Volume, VolumeMeta
from gcl_engine.io.writers import export_nifti
from gcl_engine.runtime import CancelToken, DeviceInfo, FileCancelToken, configure_cpu_threads, describe_devices
from gcl_engine.training.finetune import FinetuneResult, finetune
from gcl_engine.training.pretrain import PretrainResult, pretrain, read_metrics

__all__ = [
    "__version__", "Cancelled", "CancelToken", "CheckpointError", "CheckpointSaved", "ConfigError",
    "configure_cpu_threads", "describe_devices", "DeviceInfo", "Event", "event_from_json", "EventSink",
    "export_nifti", "export_onnx", "FileCancelToken", "finetune", "FinetuneConfig", "FinetuneResult", "Finished",
    "from_dict", "from_json", "GCLError", "Geometry", "InputError", "interpolate_slices",
    "interpolate_volume", "INTERPOLATION_METHODS",
    "job_command", "LabelNames", "load_json", "load_volume", "Log", "METHODS", "Metric", "ModelConfig",
    "OnnxExportReport", "OutputError", "PaintedLabels", "painted_slices", "PredictConfig", "Prediction",
    "PreprocessConfig",
    "pretrain", "PretrainConfig", "PretrainResult", "Preview", "Progress", "rank_slices", "read_label_names",
    "read_metrics", "sample_data_dir", "sample_paths", "scan_folder", "ScanResult", "Segmenter", "SliceScore",
    "to_dict", "to_json", "UNKNOWN_LABEL", "Volume", "VolumeMeta", "VolumeRecord",
    # insight: what pre-training learnt
    "check_fit", "conflict_matrices", "INSIGHT_JOBS", "load_scanned_volume", "map_csv_path", "map_folder",
    "MapConfig", "read_map", "render_map", "report_path", "ReportConfig", "write_report",
]


def scan_folder(path: str | Path, cache: str | Path | None = None, preprocess: PreprocessConfig | None = None,
                n_partitions: int = 4, on_event: EventSink | None = None,
                cancel: CancelToken | None = None) -> ScanResult:
    """Index a scan folder (volumes, skipped files and why, meta labels); with ``cache``, cache slices."""
    return _scan_folder(path, cache, preprocess, n_partitions, on_event, cancel)


def job_command(kind: str, config_path: str | Path, cancel_file: str | Path | None = None,
                resume: bool = False) -> list[str]:
    """argv of the child process that runs a long job (the CLI, with JSON events on stdout).

    ``kind`` is "pretrain", "finetune", "map" or "report"; the GUI starts this, reads one event per line with
    :func:`event_from_json`, and asks for a stop by creating ``cancel_file``. The child runs with
    ``--background``: lower priority and one core left to the window, so the event loop never starves.
    """
    if kind not in ("pretrain", "finetune", *INSIGHT_JOBS):
        raise ConfigError(f"unknown job kind {kind!r}")
    argv = [sys.executable, "-m", "gcl_engine.cli", kind, "--config", str(config_path), "--events", "json",
            "--background"]
    if cancel_file is not None:
        argv += ["--cancel-file", str(cancel_file)]
    if resume:
        argv.append("--resume")
    return argv


# --- insight: what pre-training learnt (the map of the folder, conflicts, the fit check, the report) ---
# Imported on first use: the map and the report pull in scikit-learn and Pillow.

INSIGHT_JOBS = ("map", "report")


def map_folder(cfg: MapConfig, on_event: EventSink | None = None, cancel: CancelToken | None = None):
    """Map of the run's folder (``OUT/map.csv`` + ``map.png``) and the fit check's calibration."""
    from gcl_engine.insight.jobs import map_job

    return map_job(cfg, on_event, cancel)


def write_report(cfg: ReportConfig, on_event: EventSink | None = None, cancel: CancelToken | None = None):
    """``OUT/report.html``: one self-contained page about the run."""
    from gcl_engine.insight.jobs import report_job

    return report_job(cfg, on_event, cancel)


def check_fit(run: str | Path, image: str | Path | Volume, device: str = "auto",
              on_event: EventSink | None = None, cancel: CancelToken | None = None):
    """Does this scan fit the run's pre-training pool? A :class:`FitVerdict` (score, threshold, verdict)."""
    from gcl_engine.insight.fit_check import check_fit as _check

    return _check(run, image, device, on_event=on_event, cancel=cancel)


def read_map(path: str | Path):
    """A map written by :func:`map_folder` (a :class:`FolderMap`)."""
    from gcl_engine.insight.folder_map import read_map_csv

    return read_map_csv(path)


def render_map(fmap, colour_by: str = "volume", width: int = 900, height: int = 600, dark: bool = False):
    """The map as a picture (:class:`MapImage`: RGBA pixels and where each point was drawn)."""
    from gcl_engine.insight.map_image import render_map as _render

    return _render(fmap, colour_by, width, height, dark)


def conflict_matrices(run: str | Path) -> dict:
    """Branch -> :class:`ConflictMatrix` of a run, from its metrics."""
    from gcl_engine.insight.conflicts import conflict_matrices as _matrices

    return _matrices(read_metrics(run))


def load_scanned_volume(source: str | Path, volume_id: str) -> Volume:
    """The scanned volume ``volume_id`` of ``source`` (what a point of the map shows)."""
    from gcl_engine.insight.volumes import load_scanned_volume as _load

    return _load(source, volume_id)


def map_csv_path(run: str | Path) -> Path:
    return _insight_files.map_csv(run)


def report_path(run: str | Path) -> Path:
    return _insight_files.report_html(run)
