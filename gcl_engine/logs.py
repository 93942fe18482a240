"""Where GCL Studio's log goes: one rotating file per user, crashes included; front ends call this once.

Library code only logs (``logging.getLogger(__name__)``) and never configures; the three faces (the CLI, the
standalone app, the napari plugin's panels and writer) call :func:`configure_logging`. Everything under the
``gcl_engine`` and ``gcl_app`` loggers lands in ``<user log folder>/gcl-studio.log`` (platformdirs; or
``$GCL_STUDIO_LOG_DIR``), rotated at 5 MB with 10 old files kept. A training child started by the GUI appends
to the same file without rotating it (two processes must not rename one file under each other). Fatal errors
(a segfault in a native library) are written by :mod:`faulthandler`: to stderr in the CLI, whose stderr the
GUI keeps for its error report, and to ``crash.log`` beside the log in the GUI, which has no console.
Messages carry file paths and hashes, never patient identifiers (those never leave ``gcl_engine.io``).
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import IO, Literal

LOG_DIR_ENV = "GCL_STUDIO_LOG_DIR"
LOG_FILE_ENV = "GCL_STUDIO_LOG_FILE"  # set by the GUI for its training children: one file for the whole session
LOG_FILE_NAME = "gcl-studio.log"
CRASH_FILE_NAME = "crash.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 10
LOGGER_NAMES = ("gcl_engine", "gcl_app")
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
_MARK = "_gcl_studio_handler"
_state: dict[str, object] = {}


def log_dir() -> Path:
    """``$GCL_STUDIO_LOG_DIR`` if set, else the per-user log folder (e.g. ``~/.local/state/gcl-studio/log``)."""
    override = os.environ.get(LOG_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_log_dir("gcl-studio", appauthor=False))


def default_log_file() -> Path:
    """``$GCL_STUDIO_LOG_FILE`` if set (a GUI's training child), else ``gcl-studio.log`` in :func:`log_dir`."""
    override = os.environ.get(LOG_FILE_ENV)
    return Path(override) if override else log_dir() / LOG_FILE_NAME


def configure_logging(verbose: bool = False, log_file: str | os.PathLike | None = None, console: bool = False,
                      rotate: bool = True, faults: Literal["stderr", "file", "none"] = "file") -> Path | None:
    """Send GCL Studio's loggers to the log file (and to stderr with ``console``); returns the file's path.

    Calling it again replaces what an earlier call set up (the CLI's ``--log-file`` after a default). A log
    folder that cannot be written is reported on stderr and skipped: logging never stops the work.
    """
    level = logging.DEBUG if verbose else logging.INFO
    loggers = [logging.getLogger(name) for name in LOGGER_NAMES]
    for logger in loggers:
        for handler in [h for h in logger.handlers if getattr(h, _MARK, False)]:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)
    handlers: list[logging.Handler] = []
    path = Path(log_file) if log_file else default_log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT,
                                                             encoding="utf-8") if rotate
                        else logging.FileHandler(path, encoding="utf-8"))
    except OSError as exc:
        sys.stderr.write(f"gcl-studio: cannot write the log file {path} ({exc.strerror or exc}); not logging to a "
                         "file\n")
        path = None
    if console:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.setLevel(level)
        setattr(handler, _MARK, True)
        for logger in loggers:
            logger.addHandler(handler)
    _enable_faulthandler(faults, path)
    _state["log_file"] = path
    return path


def configured_log_file() -> Path | None:
    """The file the last :func:`configure_logging` writes to (``None`` before, or without a file)."""
    return _state.get("log_file")  # type: ignore[return-value]


def ensure_logging(**kwargs) -> Path | None:
    """:func:`configure_logging` unless this process already did (the napari plugin's entry points)."""
    if "log_file" in _state:
        return configured_log_file()
    return configure_logging(**kwargs)


def _enable_faulthandler(faults: str, log_file: Path | None) -> None:
    """Keep a fatal error's traceback. Never takes over a faulthandler someone else enabled (pytest does)."""
    if faults == "none" or (faulthandler.is_enabled() and "fault_file" not in _state):
        return
    target: IO[str] = sys.stderr
    if faults == "file" and log_file is not None:
        try:
            target = open(log_file.with_name(CRASH_FILE_NAME), "a", encoding="utf-8")  # noqa: SIM115 - kept open
        except OSError:
            target = sys.stderr
    if target is None or not hasattr(target, "fileno"):
        return  # a windowed process without stderr and no writable folder: nothing can keep it
    old = _state.get("fault_file")
    faulthandler.enable(file=target, all_threads=True)
    _state["fault_file"] = target
    if old not in (None, sys.stderr, target):
        old.close()  # type: ignore[union-attr]
