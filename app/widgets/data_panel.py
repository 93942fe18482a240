"""Data & pre-training: choose a scan folder, see what it holds, pre-train in a child process, watch it.

The panel only builds an :class:`api.PretrainConfig` and shows events; the engine's CLI, run by
:class:`JobRunner` in another process, does the work, so the window stays responsive and a crash or
out-of-memory in training is a message here, not a lost session. The scan here reads each volume once
into the slice cache the job will use (same folder, same preprocessing), so the job's own scan of the
folder is a cache hit instead of a second read of every file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gcl_app.project import Project
from gcl_app.services import JobRunner
from gcl_app.widgets.common import EtaProgress, StatusLine, start_worker
from gcl_app.widgets.docking import scroll_body
from gcl_app.widgets.loss_plot import LossPlot
from gcl_app.widgets.meta_words import LOSS_EXPLANATION
from gcl_app.widgets.pretrain_form import PretrainForm, start_device_probe
from gcl_app.widgets.run_insights import RunInsights
from gcl_app.widgets.scan_view import ScanView
from magicgui.widgets import Container, FileEdit
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gcl_engine import api


def _sample_scans() -> str:
    """The bundled sample scans: what a new user can pre-train on before pointing at their own data."""
    try:
        return str(api.sample_paths()["scans"])
    except (api.GCLError, KeyError):
        return ""


class DataPanel(QWidget):
    """Scan a folder and pre-train on it; one panel per viewer, bound to that window's project."""

    def __init__(self, viewer: Any, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.project = project
        self.scan_result: api.ScanResult | None = None
        self.runner = JobRunner(self)
        self.closing = False  # the window is closing: a job's end registers what it wrote, nothing more
        self._progress: api.Progress | None = None  # the running job's last step, for the close prompt
        self._checkpoint_step: int | None = None  # its last checkpoint written in this session
        self._build()
        self._connect()
        self._on_project("project")
        self.project.add_listener(self._on_project)
        start_device_probe(self)  # also imports torch into this process and settles it for a window

    def _build(self) -> None:
        self.project_label = QLabel(self)
        self.project_label.setWordWrap(True)
        self.folder = FileEdit(mode="d", label="Scan folder")
        self.scan_button = QPushButton("Scan", self)
        self.scan_button.setToolTip("List the volumes, the files that cannot be used and why, and the meta labels")
        self.scan_view = ScanView(self)
        self.form = PretrainForm()
        self.start_button = QPushButton("Start", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.resume_button = QPushButton("Resume", self)
        self.cancel_button.setToolTip("Ask the job to save a checkpoint and stop")
        self.resume_button.setToolTip("Continue the last run of this project from its last checkpoint")
        self.progress = EtaProgress(self)
        self.plot = LossPlot(self)
        self.plot_note = QLabel(LOSS_EXPLANATION, self)  # what the curves mean, under them
        self.plot_note.setWordWrap(True)
        self.status = StatusLine(self)
        self.insights = RunInsights(self.viewer, self.project, self.runner, self)  # map, conflicts, report
        row = QHBoxLayout()
        row.addWidget(Container(widgets=[self.folder]).native, 1)
        row.addWidget(self.scan_button)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.cancel_button, self.resume_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(scroll_body(self))
        layout.addWidget(self.project_label)
        layout.addLayout(row)
        layout.addWidget(self.scan_view, 3)
        layout.addWidget(self.form.native)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot, 3)
        layout.addWidget(self.plot_note)
        layout.addWidget(self.insights, 4)
        layout.addWidget(self.status)
        self._set_running(False)

    def _connect(self) -> None:
        self.scan_button.clicked.connect(self.scan)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self.resume)
        r = self.runner
        r.progress.connect(self.progress.set_progress)
        r.progress.connect(self._on_progress)
        r.metric.connect(lambda m: self.plot.add(m.step, m.values))
        r.checkpoint.connect(self._on_checkpoint)
        r.log.connect(self._on_log)
        r.finished.connect(self._on_finished)
        r.failed.connect(self._on_failed)

    # --- project --------------------------------------------------------------------------

    def _on_project(self, key: str) -> None:
        if key != "project":
            return
        self.project_label.setText(f"Project: {self.project.root}")
        if not self.folder_path():
            if self.project.get("scan_folder"):
                self.folder.value = self.project.get("scan_folder")
            else:  # the engine's sample module loads SimpleITK: found in a worker, not on the UI thread
                start_worker(_sample_scans, _connect={"returned": self._offer_folder})
        self._set_running(self.runner.running)
        if not self.runner.running:
            self._describe_last_run()

    def _unfinished_run(self) -> tuple[Path, int, int] | None:
        """(run, steps done, steps planned) of the project's last run when it stopped early with a checkpoint:
        the only run Resume is offered for (resuming a finished one started a process just to say so)."""
        run = self.project.last_run()
        if run is None or not api.RunLayout(run).is_resumable():
            return None
        try:
            total = api.load_json(api.PretrainConfig, api.RunLayout(run).config).steps
        except (api.GCLError, ValueError, TypeError):
            return None
        done = max((int(row.get("step", 0)) for row in api.read_metrics(run)), default=0)
        return (run, done, total) if done < total else None

    def _offer_folder(self, folder: str) -> None:
        if folder and not self.folder_path():  # the user may have chosen one meanwhile
            self.folder.value = folder

    def _describe_last_run(self) -> None:
        """A project reopened (after a crash, say) whose last run stopped early: say that Resume continues it."""
        unfinished = self._unfinished_run()
        if unfinished is not None:
            run, done, total = unfinished
            self.status.info(f"The last pre-training run ({run.name}) stopped at step {done} of {total}. "
                             "Resume continues it from its last checkpoint.")

    # --- scanning ---------------------------------------------------------------------------

    def folder_path(self) -> str:
        value = str(self.folder.value or "")
        return "" if value in ("", ".") else value

    def scan(self) -> None:
        folder = self.folder_path()
        if not folder:
            self.status.error("Choose a scan folder first.")
            return
        self.scan_button.setEnabled(False)
        self.progress.busy(f"scanning {Path(folder).name} …")
        start_worker(api.scan_folder, folder, self.job_cache(), self.form.preprocess(),
                     api.PretrainConfig().position_partitions,
                     _connect={"returned": self._on_scanned, "errored": self._on_scan_error})

    def job_cache(self) -> str:
        """The slice cache the pre-training job reads: the host window's setting (standalone app), else the
        project's; the scan fills it, so the job reads no file twice."""
        probe = api.PretrainConfig()
        if self.runner.config_hook is not None:
            probe = self.runner.config_hook("pretrain", probe)
        return probe.cache or str(self.project.cache_dir())

    def _on_scanned(self, result: api.ScanResult) -> None:
        self.scan_result = result
        self.scan_view.show_result(result)
        self.scan_button.setEnabled(True)
        self.progress.done(f"scan done: {len(result.volumes)} volume(s)")
        self.project.update(scan_folder=result.folder)

    def _on_scan_error(self, exc: Exception) -> None:
        self.scan_button.setEnabled(True)
        self.progress.done("scan failed", complete=False)
        self.status.error(f"Scan failed: {exc}")

    # --- pre-training ------------------------------------------------------------------------

    def start(self) -> None:
        folder = self.folder_path()
        if not folder:
            self.status.error("Choose and scan a folder first.")
            return
        metas = self.scan_view.selected_meta_labels() if self.scan_result else api.PretrainConfig().meta_labels
        try:
            run = self.project.new_run_dir("pretrain")
            cfg = self.form.config(folder, str(run), metas, cache=self.job_cache())
        except api.GCLError as exc:
            self.status.error(str(exc))
            return
        self.plot.clear()
        self._launch(cfg, run, resume=False)
        self.project.update(last_run=str(run), scan_folder=folder)

    def resume(self) -> None:
        unfinished = self._unfinished_run()
        if unfinished is None:
            self.status.error("No stopped run in this project to resume (the last one finished, or none ran).")
            return
        run = unfinished[0]
        cfg = api.load_json(api.PretrainConfig, api.RunLayout(run).config)
        self.plot.load(api.read_metrics(run))
        self._launch(cfg, run, resume=True)

    def _launch(self, cfg: api.PretrainConfig, run: Path, resume: bool) -> None:
        self._progress, self._checkpoint_step = None, None
        try:
            self.runner.start("pretrain", cfg, run, resume=resume)
        except (OSError, RuntimeError, api.GCLError) as exc:
            self.status.error(f"Could not start pre-training: {exc}")
            return
        self.status.info(f"{'Resuming' if resume else 'Pre-training'} in {run}")
        self.progress.busy("starting the training process …")
        self._set_running(True)

    def _on_progress(self, event: api.Progress) -> None:
        self._progress = event

    def _on_checkpoint(self, event: api.CheckpointSaved) -> None:
        self._checkpoint_step = int(event.step)
        self.status.info(f"checkpoint saved at step {event.step}: {event.path}")

    def job_summary(self) -> str:
        """The close prompt's words for the running pre-training: where it is, what stopping keeps and loses."""
        done = self._progress.done if self._progress is not None else 0
        total = self._progress.total if self._progress is not None else 0
        where = f"at step {done} of {total}" if total else "starting"
        run = self.project.last_run()
        if self._checkpoint_step is not None:
            fallback = f"the steps after its last checkpoint (step {self._checkpoint_step}) are lost"
        elif run is not None and api.RunLayout(run).has_checkpoint():
            fallback = "the steps since the checkpoint it was resumed from are lost"
        else:
            fallback = f"no checkpoint exists yet, so all {done} steps are lost"
        return (f"Pre-training is {where}. Stopping asks it to write a checkpoint first, so Resume continues "
                f"it later. If it has not stopped within {self.runner.grace_s:.0f} s it is killed and {fallback}.")

    def cancel(self) -> None:
        self.runner.cancel()
        self.status.info("Stopping: the job saves a checkpoint first …")
        self.cancel_button.setEnabled(False)

    def _on_log(self, event: api.Log) -> None:
        if event.level == "error":
            self.status.error(event.message)
        else:
            self.status.info(event.message)

    def _on_finished(self, event: api.Finished) -> None:
        self._set_running(False)
        self.plot.flush()
        checkpoint = event.result.get("checkpoint")
        run = self.project.last_run()
        if checkpoint and run is not None and api.RunLayout(run).has_checkpoint():
            checkpoint = str(api.RunLayout(run).last_checkpoint)  # step files rotate away; this stays the newest
        if checkpoint:
            self.project.update(pretrained=str(checkpoint))
        self.progress.done(f"pre-training {event.status}", complete=event.status == "completed")
        self.status.info(f"Pre-training {event.status} after {event.result.get('steps', '?')} steps."
                         + (f" Checkpoint: {checkpoint}" if checkpoint else ""))

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.progress.done("pre-training failed", complete=False)
        self.status.error(message)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.scan_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.resume_button.setEnabled(not running and self._unfinished_run() is not None)

    def shutdown(self) -> None:
        """Stop a running job (the window is closing) and stop listening to the project."""
        self.runner.kill()
        self.insights.shutdown()
        self.project.remove_listener(self._on_project)
