"""The standalone main window: our own QMainWindow around napari's public ``QtViewer``.

Why not ``napari.Viewer``'s window: it brings napari's own File / View / Plugins menus (two File
menus, and napari's open dialogs bypass the project) and offers no public hook for its close event
(where this app stops jobs, saves annotations and releases its crash lock). Why not embed a hidden
``napari.Viewer``'s widget: that widget is only reachable through private attributes
(``window._qt_viewer``). ``napari.components.ViewerModel`` + ``napari.qt.QtViewer`` are public, are
what napari's own tests build, and work under PySide6; the panels only need the model (layers,
dims, key bindings). napari's layer list and layer controls are docked on the left, our panels on
the right; a start page replaces the canvas while no project is open.
"""

from __future__ import annotations

from pathlib import Path

from gcl_app.standalone import project_file as pf
from gcl_app.standalone.about import AboutDialog
from gcl_app.standalone.assets import docs_path, icon_path
from gcl_app.standalone.menus import build_menus
from gcl_app.standalone.prompts import Prompts
from gcl_app.standalone.sessions import crashed_sessions
from gcl_app.standalone.settings import SettingsDialog
from gcl_app.standalone.start_page import StartPage
from gcl_app.standalone.workspace import Workspace
from gcl_app.widgets.closing import close_question, stop_jobs
from napari.components import ViewerModel
from napari.qt import QtViewer, get_stylesheet
from qtpy.QtCore import Qt, QUrl
from qtpy.QtGui import QCloseEvent, QDesktopServices, QIcon
from qtpy.QtWidgets import QMainWindow, QStackedWidget

from gcl_engine import api

TITLE = "GCL Studio"


class MainWindow(QMainWindow):
    def __init__(self, config_folder: Path | None = None) -> None:
        super().__init__()
        self.config_folder = config_folder
        self.prompts = Prompts(self)
        self.viewer = ViewerModel(title=TITLE)
        self.qt_viewer = QtViewer(self.viewer)
        self.workspace = Workspace(self, self.viewer, config_folder)
        self.start_page = StartPage(api.__version__, self)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.start_page)
        self.pages.addWidget(self.qt_viewer)
        self.setCentralWidget(self.pages)
        for dock in (self.qt_viewer.dockLayerControls, self.qt_viewer.dockLayerList):
            self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.project_actions = build_menus(self.menuBar(), self)
        self._connect()
        self.setStyleSheet(get_stylesheet("dark"))
        icon = icon_path()
        if icon is not None:
            self.setWindowIcon(QIcon(str(icon)))
        self.resize(1440, 900)
        self._on_changed()

    def _connect(self) -> None:
        self.start_page.requested.connect(self._on_start_action)
        self.start_page.recent_chosen.connect(self.open_project)
        self.workspace.changed.connect(self._on_changed)
        self.workspace.message.connect(lambda text: self.statusBar().showMessage(text, 15000))

    def _on_start_action(self, action: str) -> None:
        {"new": self.ask_new_project, "open": self.ask_open_project, "sample": self.open_sample}[action]()

    def _on_changed(self) -> None:
        """Start page without a project; viewer, docks and project menus with one."""
        project = self.workspace.project
        self.pages.setCurrentWidget(self.qt_viewer if project else self.start_page)
        for dock in (self.qt_viewer.dockLayerControls, self.qt_viewer.dockLayerList):
            dock.setVisible(project is not None)
        for action in self.project_actions.values():
            action.setEnabled(project is not None)
        self.setWindowTitle(f"{project.root.name} — {TITLE}" if project else TITLE)
        if project is None:
            self.start_page.set_recent(self.workspace.recent.list())

    # --- project actions (menus and start page) -------------------------------------------------

    def _report(self, title: str, problem: str) -> bool:
        if problem:
            self.prompts.error(title, problem)
        return not problem

    def ask_new_project(self) -> None:
        """Two questions: which scans, then the project's name and place (never a hidden default folder)."""
        folder = self.prompts.folder("Choose the folder of scans for the new project")
        if not folder:
            return
        where = self.prompts.new_folder("Name the new project and choose where it is saved",
                                        str(pf.new_project_dir(Path(folder).name, pf.suggested_projects_root())))
        if not where:
            return
        target = Path(where)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            self.prompts.error("New project", f"{target} already exists and is not empty: choose a new name.")
            return
        self.new_project(folder, str(target))

    def new_project(self, scan_folder: str, project_dir: str | None = None) -> bool:
        return self._report("New project", self.workspace.new_project(scan_folder, project_dir))

    def ask_open_project(self) -> None:
        folder = self.prompts.folder("Open a GCL Studio project folder")
        if folder:
            self.open_project(folder)

    def open_project(self, folder: str) -> bool:
        return self._report("Open project", self.workspace.open_project(folder))

    def open_sample(self, project_dir: str | None = None) -> bool:
        return self._report("Sample project", self.workspace.open_sample(project_dir))

    def close_project(self) -> None:
        if self._may_stop_jobs():
            self.workspace.close()

    def fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in self.workspace.recent.list():
            action = self.recent_menu.addAction(str(folder))
            action.triggered.connect(lambda _checked=False, f=str(folder): self.open_project(f))
        self.recent_menu.setEnabled(True)

    def ask_open_scans(self) -> None:
        paths = self.prompts.files("Open scans")
        if paths:
            self.workspace.open_scans(paths)

    def ask_open_dicom(self) -> None:
        folder = self.prompts.folder("Open a DICOM series folder")
        if folder:
            self.workspace.open_scans([folder])

    def save_project(self) -> None:
        path = self.workspace.save()
        if path is not None:
            self.statusBar().showMessage(f"Saved {path}", 8000)

    def ask_export_masks(self) -> None:
        layer = self.workspace.export_layer_choice()
        if layer is None:
            self.prompts.error("Export masks", "There is no labels layer to export: paint or predict first.")
            return
        path = self.prompts.save_file(f"Export '{layer.name}' (NIfTI, or DICOM SEG as .dcm)",
                                      str(self.workspace.default_export_path(layer)))
        if path:
            self.workspace.export_masks(layer, path)

    # --- dialogs ----------------------------------------------------------------------------

    def settings_dialog(self) -> SettingsDialog:
        return SettingsDialog(self.workspace.project, self)

    def show_settings(self) -> None:
        if self.workspace.project is not None:
            self.settings_dialog().exec()

    def show_about(self) -> None:
        AboutDialog(self).exec()

    def show_docs(self) -> None:
        path = docs_path()
        if path is None or not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self.prompts.error("Documentation", f"The user guide is README.md{f' ({path})' if path else ''}.")

    # --- start-up and shut-down -----------------------------------------------------------------

    def offer_restore(self) -> bool:
        """After a crash: offer to reopen the project that was open (its annotations were autosaved)."""
        crashed = [s for s in crashed_sessions(self.config_folder) if s.project.is_dir()]
        for session in crashed_sessions(self.config_folder):
            session.clear()
        if not crashed:
            return False
        project = crashed[-1].project
        if self.prompts.confirm("Restore the last project?",
                                f"GCL Studio did not close properly last time.\n\nReopen the project "
                                f"{project.name} ({project})? Annotations autosaved before the crash come back."):
            return self.open_project(str(project))
        return False

    def _may_stop_jobs(self) -> bool:
        """No job, or the user agreed to stop it: then it is stopped properly (a checkpoint, the model saved and
        registered) before the project closes; the question says what each job keeps and loses."""
        panels = self.workspace.panels
        if panels is None or not panels.busy:
            return True
        jobs = [panels.data, panels.finetune]
        if not self.prompts.confirm("Stop the running job?", close_question(jobs)):
            return False
        stop_jobs(jobs)
        return True

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        if not self._may_stop_jobs():
            event.ignore()
            return
        self.workspace.close()
        self.workspace.lock.release()
        self.qt_viewer.close()
        super().closeEvent(event)
