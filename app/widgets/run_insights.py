"""What pre-training learnt, in the data panel: the map of the folder, the conflict matrix, the run report.

The map and the report are engine jobs run in a child process (``api.job_command("map" | "report")``, the
CLI's own code path) like pre-training, so a folder of hundreds of volumes never blocks the window; the
map is redrawn after every checkpoint the training job saves (requests while a map is being made are
coalesced into one more). Reading the map's CSV and the metrics runs in a thread worker.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gcl_app.project import Project
from gcl_app.services import JobRunner
from gcl_app.widgets.common import StatusLine, start_worker
from gcl_app.widgets.conflict_view import ConflictView
from gcl_app.widgets.map_view import MapView
from gcl_app.widgets.open_slice import open_at_slice
from qtpy.QtCore import QTimer, QUrl, Signal
from qtpy.QtGui import QDesktopServices
from qtpy.QtWidgets import QHBoxLayout, QPushButton, QTabWidget, QVBoxLayout, QWidget

from gcl_engine import api

MAP_EVERY_S = 60.0  # while training runs, at most one map a minute: each is a process of its own on a small machine


def load_run_views(run: str) -> dict[str, Any]:
    """Worker body: the run's map (when written), its conflict matrices and its slicing axis."""
    csv = api.map_csv_path(run)
    config = api.RunLayout(run).config
    axis = api.load_json(api.PretrainConfig, config).preprocess.axis if config.is_file() else 0
    return {"map": api.read_map(csv) if csv.is_file() else None, "conflicts": api.conflict_matrices(run),
            "axis": axis}


class RunInsights(QWidget):
    """Tabs for the map and the conflicts, and the buttons that update the map and open the report."""

    map_shown = Signal()
    report_opened = Signal(str)

    def __init__(self, viewer: Any, project: Project, training: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.project = viewer, project
        self.runner = JobRunner(self)
        self.fmap: Any | None = None
        self.axis = 0
        self._pending: list[str] = []
        self._last_map = float("-inf")  # time.monotonic() when the last map job ended
        self._map_timer = QTimer(self)
        self._map_timer.setSingleShot(True)
        self._map_timer.timeout.connect(lambda: self.request("map"))
        self.map_view = MapView(self)
        self.conflicts = ConflictView(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.map_view, "Map of the folder")
        self.tabs.addTab(self.conflicts, "Conflicts")
        self.update_button = QPushButton("Update map", self)
        self.update_button.setToolTip("Embed every slice of the folder with the last checkpoint and project it")
        self.report_button = QPushButton("Open report", self)
        self.report_button.setToolTip("Write the run's report (one HTML page) and open it in the browser")
        self.status = StatusLine(self)
        row = QHBoxLayout()
        row.addWidget(self.update_button)
        row.addWidget(self.report_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.update_button.clicked.connect(lambda: self.request("map"))
        self.report_button.clicked.connect(lambda: self.request("report"))
        self.map_view.point_chosen.connect(self.open_point)
        # a map after each checkpoint of a running job, and one more once the job has ended (its last checkpoint
        # is drawn after the training process exited, so a cancel never waits on the map's start-up)
        training.checkpoint.connect(lambda event: self._on_checkpoint() if event.reason == "interval" else None)
        training.finished.connect(lambda _event: self.request("map"))
        self.runner.progress.connect(lambda e: self.status.info(f"{e.stage} {e.done}/{e.total} {e.message}"))
        self.runner.finished.connect(self._on_job_done)
        self.runner.failed.connect(self._on_job_failed)
        self.project.add_listener(self._on_project)
        self._on_project("project")

    def _on_checkpoint(self) -> None:
        """A new checkpoint of a running job: a map now, or once a minute has passed since the last one."""
        wait_s = self._last_map + MAP_EVERY_S - time.monotonic()
        if wait_s <= 0:
            self.request("map")
        elif not self._map_timer.isActive():
            self._map_timer.start(int(wait_s * 1000))

    def run_dir(self) -> Path | None:
        run = self.project.last_run()
        return run if run is not None and api.RunLayout(run).has_checkpoint() else None

    # --- jobs -------------------------------------------------------------------------------

    def request(self, kind: str) -> None:
        """Start a map or report job for the project's last run; one at a time, later requests wait."""
        run = self.run_dir()
        if run is None:
            self.status.error("No pre-training checkpoint yet: start a run first.")
            return
        if self.runner.running:
            if kind not in self._pending:
                self._pending.append(kind)
            return
        cls = api.MapConfig if kind == "map" else api.ReportConfig
        cfg = cls(run=str(run), threads=1)  # one core: training and the window keep the others
        try:
            self.runner.start(kind, cfg, self.project.job_dir(kind))
        except (OSError, RuntimeError, api.GCLError) as exc:
            self.status.error(f"Could not start the {kind} job: {exc}")
            return
        self.status.info("drawing the map of the folder …" if kind == "map" else "writing the report …")

    def _on_job_done(self, event: api.Finished) -> None:
        if event.stage == "report" and event.result.get("html"):
            self._open_report(event.result["html"])
        elif event.stage == "map":
            self._last_map = time.monotonic()
            self.status.info(f"map: {event.result.get('slices', '?')} slices, checkpoint step "
                             f"{event.result.get('step', '?')}")
            self.refresh()
        self._next()

    def _on_job_failed(self, message: str) -> None:
        self._last_map = time.monotonic()
        self.status.error(message)
        self._next()

    def _next(self) -> None:
        if self._pending:
            self.request(self._pending.pop(0))

    def _open_report(self, html: str) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(html))
        self.status.info(f"Report: {html}")
        self.report_opened.emit(html)

    # --- views --------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the map and the conflicts of the last run (in a worker)."""
        run = self.run_dir()
        if run is None:
            return
        start_worker(load_run_views, str(run), _connect={"returned": self._show, "errored": self._on_error})

    def _show(self, views: dict[str, Any]) -> None:
        self.axis = int(views["axis"])
        self.conflicts.show_matrices(views["conflicts"])
        if views["map"] is not None:
            self.fmap = views["map"]
            self.map_view.set_map(self.fmap)
        self.map_shown.emit()

    def _on_error(self, exc: Exception) -> None:
        self.status.error(f"Could not read the run's map or metrics: {exc}")

    def open_point(self, index: int) -> None:
        if self.fmap is None:
            return
        source, volume_id, k = self.fmap.source[index], self.fmap.volume_id[index], int(self.fmap.slice[index])
        self.status.info(f"opening {volume_id} at slice {k} …")
        open_at_slice(self.viewer, source, volume_id, k, self.axis,
                      on_done=lambda _layer: self._say(f"{volume_id}, slice {k}"),
                      on_error=lambda exc: self._say(f"Could not open {volume_id}: {exc}", error=True))

    def _say(self, text: str, error: bool = False) -> None:
        """A worker's result may arrive after the panel was closed: then nobody is told."""
        try:
            self.status.error(text) if error else self.status.info(text)
        except RuntimeError:  # the status line's C++ object is gone with its panel
            pass

    def _on_project(self, key: str) -> None:
        if key in ("project", "last_run"):
            self.fmap = None
            self.refresh()

    def shutdown(self) -> None:
        self._map_timer.stop()
        self.runner.kill()
        self.project.remove_listener(self._on_project)
