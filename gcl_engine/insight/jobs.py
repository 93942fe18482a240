"""The insight jobs as one call each: what ``gcl map`` / ``gcl report`` and the GUI's child processes run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gcl_engine.errors import Cancelled
from gcl_engine.events import EventSink, Finished, emit
from gcl_engine.insight.config import MapConfig, ReportConfig
from gcl_engine.insight.files import MAP_CSV, MAP_PNG, ensure_folder
from gcl_engine.insight.fit_check import FitSettings, fit_reference
from gcl_engine.insight.folder_map import FolderMap, build_map, write_map_csv
from gcl_engine.insight.map_image import render_map, write_map_png
from gcl_engine.insight.report import write_report
from gcl_engine.runtime import CancelToken, configure_cpu_threads


@dataclass
class MapResult:
    csv: Path
    png: Path
    map: FolderMap
    threshold: float


def map_job(cfg: MapConfig, on_event: EventSink | None = None, cancel: CancelToken | None = None) -> MapResult:
    """Map of the folder: ``OUT/map.csv`` + ``OUT/map.png``; also calibrates the fit check (same embeddings)."""
    if cfg.device in ("auto", "cpu"):
        configure_cpu_threads(cfg.threads)
    try:
        fmap, pool, emb, model = build_map(cfg, on_event, cancel)
    except Cancelled:
        emit(on_event, Finished("map", "cancelled", {}))
        raise
    out = ensure_folder(Path(cfg.out) if cfg.out else model.insight_dir)
    settings = FitSettings(max_slices=cfg.max_slices)
    ref = fit_reference(model, settings, on_event, cancel, pool, emb)
    csv_path = write_map_csv(fmap, out / MAP_CSV)
    png_path = write_map_png(render_map(fmap, cfg.colour_by), out / MAP_PNG)
    emit(on_event, Finished("map", "completed", {"csv": str(csv_path), "png": str(png_path), "step": model.step,
                                                 "slices": len(fmap), "threshold": ref.threshold}))
    return MapResult(csv_path, png_path, fmap, ref.threshold)


def report_job(cfg: ReportConfig, on_event: EventSink | None = None, cancel: CancelToken | None = None):
    if cfg.device in ("auto", "cpu"):
        configure_cpu_threads(cfg.threads)
    result = write_report(cfg, on_event, cancel)
    emit(on_event, Finished("report", "completed", {"html": str(result.path), "sentences": result.sentences}))
    return result
