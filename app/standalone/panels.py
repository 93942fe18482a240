"""The three GCL Studio panels of one open project, docked in the main window.

A new :class:`PanelSet` is built for each project the window opens (and the old one shut down) rather
than re-pointing one set: a panel holds per-project state (the scan table, the loss curve, the
class list, an autosave bound to a project folder), and a fresh set can never write one project's
annotations into another. The panels are the same classes the napari plugin docks.
"""

from __future__ import annotations

from typing import Any

from gcl_app.project import Project
from gcl_app.standalone.settings import apply_job_settings, job_settings
from gcl_app.widgets.data_panel import DataPanel
from gcl_app.widgets.export_panel import ExportPanel
from gcl_app.widgets.finetune_panel import FinetunePanel
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QDockWidget, QMainWindow, QWidget

# "&&": a dock's title becomes its tab's text, where a single "&" marks a keyboard mnemonic
TITLES = {"data": "Data && pre-training", "finetune": "Annotate && fine-tune", "export": "Predict && export"}


class PanelSet:
    """Builds, docks (tabbed, right side) and shuts down the panels of one project."""

    def __init__(self, window: QMainWindow, viewer: Any, project: Project) -> None:
        self.window, self.project = window, project
        self.data = DataPanel(viewer, project)
        self.finetune = FinetunePanel(viewer, project)
        self.export = ExportPanel(viewer, project)
        self.docks: dict[str, QDockWidget] = {}
        for key, panel in self.panels().items():
            dock = QDockWidget(TITLES[key], window)
            dock.setObjectName(f"gcl-{key}")
            dock.setWidget(panel)  # each panel scrolls inside (widgets/docking.py)
            window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            self.docks[key] = dock
        window.tabifyDockWidget(self.docks["data"], self.docks["finetune"])
        window.tabifyDockWidget(self.docks["finetune"], self.docks["export"])
        self.show("finetune")
        for panel in (self.data, self.finetune):
            panel.runner.config_hook = self._hook

    def panels(self) -> dict[str, QWidget]:
        return {"data": self.data, "finetune": self.finetune, "export": self.export}

    def show(self, key: str) -> None:
        self.docks[key].show()
        self.docks[key].raise_()

    def _hook(self, kind: str, config: Any) -> Any:
        return apply_job_settings(job_settings(self.project), kind, config)

    @property
    def busy(self) -> bool:
        """A training job is running (closing would stop it)."""
        return self.data.runner.running or self.finetune.runner.running

    def shutdown(self) -> None:
        """Stop jobs, save unsaved annotations into this set's project, undock and delete the panels."""
        for panel in (self.data, self.finetune, self.export):
            panel.shutdown()
        for dock in self.docks.values():
            self.window.removeDockWidget(dock)
            dock.deleteLater()
        self.docks.clear()
