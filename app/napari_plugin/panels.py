"""The three dock widgets napari creates from the manifest, each bound to its window's project.

napari instantiates a widget class with ``napari_viewer``; the three panels of one window share one
:class:`Project` (looked up per viewer, never a process-wide singleton: two windows can work on two
projects). The project folder is ``$GCL_STUDIO_PROJECT`` or a per-user default. Opened from the menus in
any order, the panels join one tab group on the right (``widgets/docking.py``).

Each class is defined on first lookup (PEP 562 ``__getattr__``): napari resolves one ``python_name`` on the
UI thread when the user opens a panel, and opening *Annotate & fine-tune* must not import what only the
other panels need. torch is imported by each panel's device probe, matplotlib by the loss plot's first
render, both in worker threads.
"""

from __future__ import annotations

import importlib
import weakref
from pathlib import Path
from typing import Any

from gcl_app.napari_plugin import reader
from gcl_app.napari_plugin.reader_preference import claim_scan_patterns
from gcl_app.project import Project, default_project_dir
from gcl_app.widgets.closing import guard_when_docked
from gcl_app.widgets.docking import join_tabs_when_docked
from qtpy.QtCore import QObject, Signal

from gcl_engine import api

_PROJECTS: weakref.WeakKeyDictionary[Any, Project] = weakref.WeakKeyDictionary()
# widget class name -> (module of the panel, panel class, what napari's Plugins menu calls it)
_PANELS = {
    "DataPanelWidget": ("gcl_app.widgets.data_panel", "DataPanel", "Data & pre-training"),
    "FinetunePanelWidget": ("gcl_app.widgets.finetune_panel", "FinetunePanel", "Annotate & fine-tune"),
    "ExportPanelWidget": ("gcl_app.widgets.export_panel", "ExportPanel", "Predict & export"),
}
__all__ = ["project_for", *_PANELS]


def project_for(viewer: Any) -> Project:
    """The project of this viewer's window (created on first use); napari hands panels a proxy.

    Opening a panel is where the plugin starts GCL Studio's log (napari's own logging is left alone) and
    becomes napari's reader of the scan suffixes the user has not given to another reader."""
    api.ensure_logging()
    claim_scan_patterns()
    real = getattr(viewer, "__wrapped__", viewer)
    project = _PROJECTS.get(real)
    if project is None:
        project = Project(default_project_dir())
        _PROJECTS[real] = project
    return project


class ReadFailures(QObject):
    """The reader's failures (any thread napari reads on) as a signal on the panel's UI thread."""

    failed = Signal(str, str)  # path, message

    def __call__(self, path: str, message: str) -> None:
        try:
            self.failed.emit(path, message)
        except RuntimeError:  # the panel is gone
            pass


def _widget_class(name: str) -> type:
    module, panel_name, title = _PANELS[name]
    panel = getattr(importlib.import_module(module), panel_name)

    def __init__(self: Any, napari_viewer: Any) -> None:  # noqa: N807 (the class's constructor)
        panel.__init__(self, napari_viewer, project_for(napari_viewer))
        join_tabs_when_docked(self)  # one tab group per window, each panel scrolling: fits a laptop screen
        guard_when_docked(self)  # closing napari during training stops the job properly (widgets/closing.py)
        self.read_failures = ReadFailures(self)
        self.read_failures.failed.connect(
            lambda path, message: self.status.error(f"Could not open {Path(path).name}: {message}"))
        reader.add_failure_listener(self.read_failures)

    def shutdown(self: Any) -> None:
        reader.remove_failure_listener(self.read_failures)
        panel.shutdown(self)

    return type(name, (panel,), {"__init__": __init__, "shutdown": shutdown, "__module__": __name__,
                                  "__doc__": f"{title}, as napari's Plugins menu creates it."})


def __getattr__(name: str) -> Any:
    if name not in _PANELS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = _widget_class(name)
    globals()[name] = cls
    return cls


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PANELS))
