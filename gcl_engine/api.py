"""The engine's public facade: every GUI action and CLI command is one call here.

The app imports only this module (and the config / event types it re-exports), never torch. Importing it
is cheap: configs, events, errors, geometry and file-layout names load at once; everything that needs
SimpleITK, nibabel or torch loads on first use (PEP 562 ``__getattr__``, as napari's facade does with
``lazy_loader``), so the napari reader and writer open and save a NIfTI without ever importing torch.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from gcl_engine.insight import files as _insight_files
from gcl_engine.insight.config import MapConfig, ReportConfig
from gcl_engine.io.formats import SCAN_SUFFIXES, is_scan_path
from gcl_engine.io.volume import Geometry, Volume, VolumeMeta, VolumeSource
from gcl_engine.logs import LOG_FILE_ENV, configure_logging, ensure_logging, log_dir
from gcl_engine.recipe import RECIPE, InteractiveRecipe
from gcl_engine.run_layout import (
    MODEL_SUFFIX,
    ONNX_SUFFIX,
    RunLayout,
    is_onnx_model,
    is_torch_model,
    job_config_path,
    read_metrics,
    run_config_of,
    run_of_checkpoint,
)
from gcl_engine.runtime import (
    CancelToken,
    DeviceInfo,
    FileCancelToken,
    configure_cpu_threads,
    default_threads,
    describe_devices,
)

if TYPE_CHECKING:
    from gcl_engine.data.interpolation import METHODS as INTERPOLATION_METHODS
    from gcl_engine.data.interpolation import interpolate_between as interpolate_slices
    from gcl_engine.data.interpolation import interpolate_volume
    from gcl_engine.data.painted import UNKNOWN_LABEL, painted_slices
    from gcl_engine.data.scan import ScanResult, VolumeRecord
    from gcl_engine.export.masks import MASK_FORMATS, export_mask
    from gcl_engine.export.onnx import OnnxExportReport, export_onnx
    from gcl_engine.inference.folder import FolderPrediction, PredictedMask, predict_folder
    from gcl_engine.inference.fusion import PaintedLabels
    from gcl_engine.inference.segmenter import Prediction, Segmenter
    from gcl_engine.inference.suggest import SliceScore, rank_slices
    from gcl_engine.io.folder_index import SkippedFile
    from gcl_engine.io.label_names import LabelNames, read_label_names
    from gcl_engine.io.loading import load_volume
    from gcl_engine.io.sample_data import sample_data_dir, sample_paths
    from gcl_engine.io.writers import export_nifti
    from gcl_engine.training.finetune import FinetuneResult, finetune
    from gcl_engine.training.pretrain import PretrainResult, pretrain

# name -> "module" (same name there) or "module:name there"
_LAZY: dict[str, str] = {
    "INTERPOLATION_METHODS": "gcl_engine.data.interpolation:METHODS",
    "interpolate_slices": "gcl_engine.data.interpolation:interpolate_between",
    "interpolate_volume": "gcl_engine.data.interpolation",
    "UNKNOWN_LABEL": "gcl_engine.data.painted", "painted_slices": "gcl_engine.data.painted",
    "ScanResult": "gcl_engine.data.scan", "VolumeRecord": "gcl_engine.data.scan",
    "MASK_FORMATS": "gcl_engine.export.masks", "export_mask": "gcl_engine.export.masks",
    "OnnxExportReport": "gcl_engine.export.onnx", "export_onnx": "gcl_engine.export.onnx",
    "FolderPrediction": "gcl_engine.inference.folder", "PredictedMask": "gcl_engine.inference.folder",
    "predict_folder": "gcl_engine.inference.folder",
    "PaintedLabels": "gcl_engine.inference.fusion",
    "Prediction": "gcl_engine.inference.segmenter", "Segmenter": "gcl_engine.inference.segmenter",
    "SliceScore": "gcl_engine.inference.suggest", "rank_slices": "gcl_engine.inference.suggest",
    "SkippedFile": "gcl_engine.io.folder_index",
    "LabelNames": "gcl_engine.io.label_names", "read_label_names": "gcl_engine.io.label_names",
    "load_volume": "gcl_engine.io.loading",
    "sample_data_dir": "gcl_engine.io.sample_data", "sample_paths": "gcl_engine.io.sample_data",
    "export_nifti": "gcl_engine.io.writers",
    "FinetuneResult": "gcl_engine.training.finetune", "finetune": "gcl_engine.training.finetune",
    "PretrainResult": "gcl_engine.training.pretrain", "pretrain": "gcl_engine.training.pretrain",
}

__all__ = [
    "INTERPOLATION_METHODS", "PaintedLabels", "SliceScore", "UNKNOWN_LABEL", "interpolate_slices",
    "interpolate_volume", "painted_slices", "rank_slices",
    "METHODS", "MODEL_SUFFIX", "ONNX_SUFFIX", "SCAN_SUFFIXES", "Cancelled", "CancelToken", "CheckpointError",
    "CheckpointSaved", "ConfigError", "DeviceInfo", "Event", "EventSink", "FileCancelToken", "FinetuneConfig",
    "FinetuneResult", "Finished", "FolderPrediction", "GCLError", "Geometry", "InputError", "LabelNames", "Log",
    "Metric", "ModelConfig", "OnnxExportReport", "OutputError", "PredictConfig", "PredictedMask", "Prediction",
    "PreprocessConfig", "PretrainConfig", "PretrainResult", "Preview", "Progress", "RunLayout", "ScanResult",
    "Segmenter", "SkippedFile", "Volume", "VolumeMeta", "VolumeRecord", "VolumeSource", "__version__",
    "configure_cpu_threads", "default_threads", "describe_devices", "event_from_json", "export_nifti", "export_onnx",
    "finetune",
    "from_dict", "from_json", "is_onnx_model", "is_scan_path", "is_torch_model", "job_command", "job_config_path",
    "load", "load_json", "load_volume", "predict_folder", "pretrain", "read_label_names", "read_metrics",
    "run_config_of", "run_of_checkpoint", "sample_data_dir", "sample_paths", "scan_folder", "to_dict", "to_json",
    "RECIPE", "InteractiveRecipe", "LOG_FILE_ENV", "MASK_FORMATS", "configure_logging", "ensure_logging",
    "export_mask", "log_dir",
    # insight: what pre-training learnt
    "check_fit", "conflict_matrices", "INSIGHT_JOBS", "load_scanned_volume", "map_csv_path", "map_folder",
    "MapConfig", "read_map", "render_map", "report_path", "ReportConfig", "write_report",
]


def __getattr__(name: str) -> Any:
    """Load a heavy name's module on first use and keep the name here (later lookups cost nothing)."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def scan_folder(path: str | Path, cache: str | Path | None = None, preprocess: PreprocessConfig | None = None,
                n_partitions: int = 4, on_event: EventSink | None = None,
                cancel: CancelToken | None = None) -> ScanResult:
    """Index a scan folder (volumes, skipped files and why, meta labels); with ``cache``, cache slices."""
    from gcl_engine.data.scan import scan_folder as scan

    return scan(path, cache, preprocess, n_partitions, on_event, cancel)


def load(record: VolumeRecord | VolumeSource, time_index: int | None = None) -> Volume:
    """Exactly the volume a scan record stands for: its file or DICOM series, its time point (no torch)."""
    from gcl_engine.io.loading import load_one

    if isinstance(record, VolumeSource):
        return load_one(record, time_index)
    return load_one(VolumeSource(record.source, record.kind, tuple(record.files)), record.time_index)


def job_command(kind: str, config_path: str | Path, cancel_file: str | Path | None = None,
                resume: bool = False) -> list[str]:
    """argv of the child process that runs a long job (the CLI, with JSON events on stdout).

    ``kind`` is "pretrain", "finetune", "map" or "report"; the GUI writes the config to :func:`job_config_path`, starts
    this, reads one event per line with :func:`event_from_json`, and asks for a stop by creating
    ``cancel_file``. The child runs with ``--background``: lower priority and one core left to the window,
    so the event loop never starves.
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
