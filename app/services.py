"""Run long engine jobs (pre-training, fine-tuning) in a child process and bridge their events to Qt.

Why a child process and not a thread: training holds the GIL in long stretches, can exhaust memory,
and a crash in a native library must not take the user's window (and unsaved annotations) down
with it. The child is the engine's own CLI (``api.job_command``), so the GUI runs exactly the code
path the command line does. Its stdout carries one JSON event per line; two daemon threads read
stdout and stderr so that the UI thread never waits on a pipe, and JSON parsing (Preview masks can
be large) happens off the UI thread too. Events reach the UI thread through queued Qt signals.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

from gcl_engine import api

log = logging.getLogger(__name__)
STDERR_TAIL_LINES = 25
OOM_MARKERS = ("out of memory", "memoryerror", "cannot allocate memory", "std::bad_alloc")


def _masks_to_arrays(event: api.Event) -> api.Event:
    """Preview masks arrive as nested lists; turn them into small integer arrays once, off the UI thread."""
    if isinstance(event, api.Preview):
        masks = [np.asarray(m, dtype=np.int32).astype(np.uint16) for m in event.masks]
        return dataclasses.replace(event, masks=masks)
    return event


def _kill_if_running(holder: dict[str, subprocess.Popen | None]) -> None:
    """Kill the child of a runner that is going away (window closed, interpreter exiting)."""
    proc = holder.get("proc")
    if proc is not None and proc.poll() is None:
        proc.kill()


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def failure_message(kind: str, returncode: int, stderr_tail: list[str], killed: bool) -> str:
    """One readable paragraph for a job that ended badly, naming out-of-memory when that is the cause.

    A child killed by SIGKILL that the app did not kill was most often the kernel's out-of-memory
    killer, but a user's ``kill -9`` looks the same: the message says both what happened and the likely cause.
    """
    tail = "\n".join(stderr_tail[-STDERR_TAIL_LINES:]).strip()
    lowered = tail.lower()
    advice = "Try the quick preset, a smaller image size or fewer volumes per batch."
    if any(marker in lowered for marker in OOM_MARKERS):
        head = f"The {kind} job ran out of memory (exit code {returncode}). {advice}"
    elif killed:
        head = f"The {kind} job was stopped by force (exit code {returncode})."
    elif returncode == -9:  # SIGKILL (POSIX; Windows reports no signals)
        head = (f"The {kind} job was killed from outside (SIGKILL, exit code {returncode}), most likely because "
                f"the system ran out of memory. {advice}")
    elif returncode < 0:
        head = f"The {kind} job crashed ({_signal_name(returncode)}, exit code {returncode})."
    else:
        head = f"The {kind} job stopped with an error (exit code {returncode})."
    return f"{head}\n\n{tail}" if tail else head


class JobRunner(QObject):
    """One child job at a time; signals carry engine event objects (``api.Progress``...)."""

    started = Signal(str)  # kind
    progress = Signal(object)  # api.Progress
    metric = Signal(object)  # api.Metric
    checkpoint = Signal(object)  # api.CheckpointSaved
    preview = Signal(object)  # api.Preview, masks as numpy arrays
    log = Signal(object)  # api.Log
    finished = Signal(object)  # api.Finished with status "completed" or "cancelled"
    failed = Signal(str)  # a crash, a non-zero exit or a "failed" status: the message to show
    _event_ready = Signal(object)
    _exited = Signal(int)

    def __init__(self, parent: QObject | None = None, grace_s: float = 30.0) -> None:
        super().__init__(parent)
        self.grace_s = grace_s
        # (kind, config) -> config: settings a host window lays over every job (the standalone app's
        # threads, cache folder, default device), whichever panel built the config
        self.config_hook: Callable[[str, Any], Any] | None = None
        self.kind = ""
        self.cancel_file: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._holder: dict[str, subprocess.Popen | None] = {"proc": None}  # no reference back to self
        self.destroyed.connect(lambda *_a, h=self._holder: _kill_if_running(h))
        atexit.register(_kill_if_running, self._holder)
        self._stderr: deque[str] = deque(maxlen=200)
        self._finished_event: api.Finished | None = None
        self._killed = False
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self.kill)
        self._event_ready.connect(self._dispatch)
        self._exited.connect(self._on_exit)

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self, kind: str, config: Any, workdir: str | Path, resume: bool = False) -> Path:
        """Write ``config`` as JSON where the engine says (a run's own config file) and start the job in
        ``workdir``; returns the config path."""
        if self._proc is not None:
            raise RuntimeError(f"a {self.kind} job is already running")
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        if self.config_hook is not None:
            config = self.config_hook(kind, config)
        config_path = api.job_config_path(kind, workdir)
        config_path.write_text(api.to_json(config), encoding="utf-8")
        self.cancel_file = workdir / f"{kind}.cancel"
        self.cancel_file.unlink(missing_ok=True)
        argv = api.job_command(kind, config_path, self.cancel_file, resume)
        log_file = api.ensure_logging()  # the child appends to the window's log
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **({api.LOG_FILE_ENV: str(log_file)} if log_file else {})}
        log.info("starting the %s job: %s", kind, config_path)
        self.kind, self._finished_event, self._killed = kind, None, False
        self._stderr.clear()
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir,
                                      env=env, text=True, encoding="utf-8", errors="replace", bufsize=1)
        self._holder["proc"] = self._proc
        threading.Thread(target=self._read_stdout, args=(self._proc,), daemon=True).start()
        self.started.emit(kind)
        return config_path

    def cancel(self) -> None:
        """Ask the child to checkpoint and stop (the cancel file); kill it if it has not after the grace."""
        if self._proc is None or self.cancel_file is None:
            return
        self.cancel_file.touch()
        self._kill_timer.start(int(self.grace_s * 1000))

    def kill(self) -> None:
        """Stop the child now (its last checkpoint on disk survives)."""
        if self._proc is not None and self._proc.poll() is None:
            self._killed = True
            self._proc.kill()

    # --- worker threads (never touch widgets here) ---------------------------------------------

    def _read_stdout(self, proc: subprocess.Popen) -> None:
        err_thread = threading.Thread(target=self._read_stderr, args=(proc,), daemon=True)
        err_thread.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = _masks_to_arrays(api.event_from_json(line))
            except (ValueError, KeyError, TypeError):
                self._stderr.append(line)  # a stray print is kept for the error report, not fatal
                continue
            if not self._emit_from_thread(self._event_ready, event):
                break
        returncode = proc.wait()
        err_thread.join(timeout=5)
        self._emit_from_thread(self._exited, returncode)

    @staticmethod
    def _emit_from_thread(signal: Any, value: Any) -> bool:
        """Emit unless the runner (and its panel) was deleted meanwhile: then nobody is listening."""
        try:
            signal.emit(value)
        except RuntimeError:
            return False
        return True

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._stderr.append(line.rstrip("\n"))

    # --- UI thread ---------------------------------------------------------------------------

    def _dispatch(self, event: api.Event) -> None:
        if isinstance(event, api.Finished):
            self._finished_event = event
            return  # reported once the process has exited, so a restart sees ``running`` False
        signal = {api.Progress: self.progress, api.Metric: self.metric, api.CheckpointSaved: self.checkpoint,
                  api.Preview: self.preview, api.Log: self.log}.get(type(event))
        if signal is not None:
            signal.emit(event)

    def _on_exit(self, returncode: int) -> None:
        self._kill_timer.stop()
        self._proc = self._holder["proc"] = None
        if self.cancel_file is not None:
            self.cancel_file.unlink(missing_ok=True)
        done = self._finished_event
        if returncode == 0 and done is not None and done.status in ("completed", "cancelled"):
            log.info("the %s job %s", self.kind, done.status)
            self.finished.emit(done)
        elif self._killed:
            log.warning("the %s job was stopped by force", self.kind)
            self.finished.emit(api.Finished(self.kind, "cancelled", {"killed": True}))
        else:
            message = failure_message(self.kind, returncode, list(self._stderr), self._killed)
            log.error("%s", message)
            self.failed.emit(message)
