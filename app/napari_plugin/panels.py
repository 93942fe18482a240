"""The three dock widgets napari creates from the manifest, each bound to its window's project.

napari instantiates a widget class with ``napari_viewer``; the three panels of one window share one
:class:`Project` (looked up per viewer, never a process-wide singleton: two windows can work on two
projects). The project folder is ``$GCL_STUDIO_PROJECT`` or a per-user default. Opened from the menus in
any order, the panels join one tab group on the right (``widgets/docking.py``).
"""

from __future__ import annotations

import weakref
from typing import Any

from gcl_app.project import Project, default_project_dir
from gcl_app.widgets.data_panel import DataPanel
from gcl_app.widgets.docking import join_tabs_when_docked
from gcl_app.widgets.export_panel import ExportPanel
from gcl_app.widgets.finetune_panel import FinetunePanel

from gcl_engine import api

_PROJECTS: weakref.WeakKeyDictionary[Any, Project] = weakref.WeakKeyDictionary()


def project_for(viewer: Any) -> Project:
    """The project of this viewer's window (created on first use); napari hands panels a proxy.

    Opening a panel is where the plugin starts GCL Studio's log (napari's own logging is left alone)."""
    api.ensure_logging()
    real = getattr(viewer, "__wrapped__", viewer)
    project = _PROJECTS.get(real)
    if project is None:
        project = Project(default_project_dir())
        _PROJECTS[real] = project
    return project


class DataPanelWidget(DataPanel):
    """Data & pre-training, as napari's Plugins menu creates it."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer, project_for(napari_viewer))
        join_tabs_when_docked(self)  # one tab group per window, each panel scrolling: fits a laptop screen


class FinetunePanelWidget(FinetunePanel):
    """Annotate & fine-tune, as napari's Plugins menu creates it."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer, project_for(napari_viewer))
        join_tabs_when_docked(self)  # one tab group per window, each panel scrolling: fits a laptop screen


class ExportPanelWidget(ExportPanel):
    """Predict & export, as napari's Plugins menu creates it."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer, project_for(napari_viewer))
        join_tabs_when_docked(self)  # one tab group per window, each panel scrolling: fits a laptop screen
