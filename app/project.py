"""A project folder: where one window's runs, models, annotations and settings live on disk.

Not a singleton (one per window, passed to each panel): two windows on two projects never share
state by accident. Everything a panel needs to survive a crash or a restart is on disk here:
``settings.json`` (written atomically), ``runs/`` (pre-training run folders, laid out as ``api.RunLayout``
says), ``models/`` (fine-tuned models), ``annotations/`` (label maps, NIfTI with the source geometry, via
``api.export_nifti``) and ``cache/`` (the slice cache the data panel's scan fills and pre-training reads).
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from gcl_engine import api

PROJECT_ENV = "GCL_STUDIO_PROJECT"
DEFAULT_SETTINGS: dict[str, Any] = {"autosave_s": 30, "scan_folder": "", "pretrained": "", "model": "",
                                    "model_classes": [], "last_run": ""}


def default_project_dir() -> Path:
    """``$GCL_STUDIO_PROJECT``, else a per-user data folder (never the current directory)."""
    override = os.environ.get(PROJECT_ENV)
    if override:
        return Path(override)
    from platformdirs import user_data_path

    return user_data_path("gcl-studio", appauthor=False) / "projects" / "default"


def safe_name(text: str) -> str:
    """A file-name-safe version of a volume id (ids never hold identifiers, but may hold odd characters)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return cleaned or "volume"


def read_label_names(label_path: str | Path) -> dict[int, str] | None:
    """Class names from the ``<name>.labels.json`` that ``api.export_nifti`` writes; None when there is none.

    Names that do not belong to this version of the file (an interrupted save) are not used: {} and a
    warning naming both files, which napari shows as a notification and the standalone app in its log.
    """
    found = api.read_label_names(label_path)
    if found.problem:
        warnings.warn(found.problem, UserWarning, stacklevel=2)
    return found.names if found.found else None


class RestoredAnnotations(NamedTuple):
    """Autosaved annotations: the label array, its class names, and why the names were not used (or "")."""

    array: np.ndarray
    names: dict[int, str]
    problem: str


class Project:
    """One project folder; ``open`` re-points it (listeners hear about it) without a new object."""

    def __init__(self, root: str | Path) -> None:
        self._listeners: list[Callable[[], Callable[[str], None] | None]] = []
        self.root = Path(root)
        self.settings: dict[str, Any] = {}
        self.open(root)

    # --- folder and settings ----------------------------------------------------------------

    def open(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        for sub in ("runs", "models", "annotations"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.settings = {**DEFAULT_SETTINGS, **self._read_settings()}
        self._notify("project")

    @property
    def settings_path(self) -> Path:
        return self.root / "settings.json"

    def _read_settings(self) -> dict[str, Any]:
        try:
            data = json.loads(self.settings_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    def update(self, **values: Any) -> None:
        """Change settings and write them atomically (a crash mid-write keeps the old file)."""
        self.settings.update(values)
        tmp = self.settings_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.settings, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.settings_path)
        for key in values:
            self._notify(key)

    def add_listener(self, callback: Callable[[str], None]) -> None:
        """``callback(key)`` after each settings change ("project" after ``open``).

        Bound methods are held weakly: a closed panel must not keep its window alive through the project.
        """
        if hasattr(callback, "__self__"):
            self._listeners.append(weakref.WeakMethod(callback))  # type: ignore[arg-type]
        else:
            self._listeners.append(lambda cb=callback: cb)

    def remove_listener(self, callback: Callable[[str], None]) -> None:
        self._listeners = [ref for ref in self._listeners if ref() not in (None, callback)]

    def _notify(self, key: str) -> None:
        for ref in list(self._listeners):
            callback = ref()
            if callback is not None:
                callback(key)

    # --- runs and models ----------------------------------------------------------------------

    def new_run_dir(self, prefix: str = "pretrain") -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path, n = self.root / "runs" / f"{prefix}-{stamp}", 1
        while path.exists():
            n += 1
            path = self.root / "runs" / f"{prefix}-{stamp}-{n}"
        path.mkdir(parents=True)
        return path

    def last_run(self) -> Path | None:
        run = self.get("last_run")
        return Path(run) if run and Path(run).is_dir() else None

    def cache_dir(self) -> Path:
        """The project's slice cache (keyed by file content and preprocessing, so runs share it safely)."""
        return self.root / "cache"

    def pretrained_checkpoint(self) -> Path | None:
        """Where fine-tuning starts: the checkpoint a finished (or cancelled) pre-training recorded, else the
        newest checkpoint of the last run, which a run cut short by a crash still left."""
        path = self.get("pretrained")
        if path and Path(path).is_file():
            return Path(path)
        run = self.last_run()
        layout = api.RunLayout(run) if run is not None else None
        return layout.last_checkpoint if layout is not None and layout.has_checkpoint() else None

    def current_model(self) -> Path | None:
        path = self.get("model")
        return Path(path) if path and Path(path).is_file() else None

    def new_model_path(self, volume_id: str) -> Path:
        """``models/<volume>-vNNN`` + the model suffix, one past the highest existing version (never an
        existing file)."""
        stem, suffix = safe_name(volume_id), api.MODEL_SUFFIX
        versions = [int(m.group(1)) for p in (self.root / "models").glob(f"{stem}-v*{suffix}")
                    if (m := re.fullmatch(re.escape(stem) + r"-v(\d+)" + re.escape(suffix), p.name))]
        return self.root / "models" / f"{stem}-v{max(versions, default=0) + 1:03d}{suffix}"

    def job_dir(self, kind: str) -> Path:
        path = self.root / "jobs" / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- annotations ------------------------------------------------------------------------

    def annotation_path(self, volume_id: str) -> Path:
        return self.root / "annotations" / f"{safe_name(volume_id)}.nii.gz"

    def save_annotations(self, labels: np.ndarray, geometry: api.Geometry, volume_id: str,
                         names: Mapping[int, str] | Sequence[str]) -> Path:
        """Write the annotations (atomic, source geometry, class names in the sidecar)."""
        return api.export_nifti(labels, geometry, self.annotation_path(volume_id), names)

    def save_annotations_from(self, labels: np.ndarray, context: Mapping[str, Any]) -> Path:
        """:meth:`save_annotations` with a context dict (geometry, volume_id, names): the autosave's form."""
        return self.save_annotations(labels, context["geometry"], context["volume_id"], context["names"])

    def load_annotations(self, volume_id: str, shape: tuple[int, ...]) -> RestoredAnnotations | None:
        """The autosaved annotations of a volume, or None (none yet, or another grid: never misapplied)."""
        path = self.annotation_path(volume_id)
        if not path.is_file():
            return None
        array = api.load_volume(path).array
        if tuple(array.shape) != tuple(shape):
            return None
        found = api.read_label_names(path)
        return RestoredAnnotations(array, found.names, found.problem)
