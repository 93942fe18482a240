"""``project.json``: what a window had open in a project folder, so that reopening the folder restores it.

:class:`gcl_app.project.Project` keeps what the panels need (``settings.json``: runs, models, the
chosen checkpoints; ``annotations/``); this file adds the window's side: which scans were open (and
visible), which image was being annotated, and which app version wrote it. Its presence is also what
makes a folder a GCL Studio project for *Open project*. Scans inside the bundled sample data are
stored as ``sample:<relative path>`` so that a project made with one install still opens after the
app moved (the bundle's folder differs between machines).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcl_app.project import safe_name

from gcl_engine import api

PROJECT_FILE = "project.json"
FORMAT = 1
SAMPLE_PREFIX = "sample:"
PROJECTS_ENV = "GCL_STUDIO_PROJECTS_DIR"


@dataclass
class ScanEntry:
    """One scan (image or label map) open in the window."""

    path: str
    visible: bool = True


@dataclass
class ProjectFile:
    scans: list[ScanEntry] = field(default_factory=list)
    active: str = ""  # name of the image layer being annotated
    app_version: str = ""

    def add_scan(self, path: str | Path, visible: bool = True) -> None:
        stored = store_path(path)
        if all(entry.path != stored for entry in self.scans):
            self.scans.append(ScanEntry(stored, visible))


def store_path(path: str | Path) -> str:
    """The form kept in project.json: ``sample:...`` inside the sample data, else absolute."""
    resolved = Path(path).resolve()
    try:
        return SAMPLE_PREFIX + resolved.relative_to(api.sample_data_dir().resolve()).as_posix()
    except (ValueError, api.GCLError):
        return str(resolved)


def resolve_path(stored: str) -> Path:
    if stored.startswith(SAMPLE_PREFIX):
        return api.sample_data_dir() / stored[len(SAMPLE_PREFIX):]
    return Path(stored)


def is_project(folder: str | Path) -> bool:
    return (Path(folder) / PROJECT_FILE).is_file()


def read_project_file(folder: str | Path) -> ProjectFile:
    """The saved state, or an empty one (a folder made by the plugin, or a damaged file)."""
    try:
        data: dict[str, Any] = json.loads((Path(folder) / PROJECT_FILE).read_text(encoding="utf-8"))
        scans = [ScanEntry(str(s["path"]), bool(s.get("visible", True))) for s in data.get("scans", [])]
        return ProjectFile(scans, str(data.get("active", "")), str(data.get("app_version", "")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ProjectFile()


def write_project_file(folder: str | Path, state: ProjectFile) -> Path:
    """Atomic write (a crash mid-save keeps the previous file)."""
    path = Path(folder) / PROJECT_FILE
    data = {"format": FORMAT, "app_version": state.app_version, "active": state.active,
            "scans": [{"path": s.path, "visible": s.visible} for s in state.scans]}
    tmp = path.with_name(PROJECT_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def projects_root() -> Path:
    """Where new projects go unless the user says otherwise: ``$GCL_STUDIO_PROJECTS_DIR`` or user data."""
    override = os.environ.get(PROJECTS_ENV)
    if override:
        return Path(override)
    from platformdirs import user_data_path

    return user_data_path("gcl-studio", appauthor=False) / "projects"


def suggested_projects_root() -> Path:
    """Where *New project* proposes to put a project: a folder the user can find again (the override, else
    "GCL Studio projects" in their home folder), never the hidden data folder."""
    override = os.environ.get(PROJECTS_ENV)
    return Path(override) if override else Path.home() / "GCL Studio projects"


def new_project_dir(name: str, root: Path | None = None) -> Path:
    """A folder that does not exist yet under ``root``, named after ``name`` (``-2``, ``-3``... if taken)."""
    base = (root or projects_root()) / safe_name(name)
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def sample_project_dir(root: Path | None = None) -> Path:
    """The user's copy of the sample project (one, reopened each time, so its work is kept)."""
    return (root or projects_root()) / "sample-ct"
