"""ITK's words turned into plain ones, and what ITK and its libraries print sent to the log, not the terminal.

SimpleITK's exceptions carry C++ source paths and object addresses ("NiftiImageIO (0x55d0...):
nifti_image_load failed for file: /data/x.hdr"); a user needs "its pixel file x.img is missing". ITK's
warnings go through its output window, which a :class:`SimpleITK.LoggerBase` subclass sends to Python's
``logging`` ("gcl_engine.io"); the libraries inside ITK (libminc, GDCM's JPEG codecs) write to the C stderr
themselves, so reads run inside :func:`native_output_to_log`, which lends them a temporary file for fd 2 and
logs what they wrote. The package logger has a NullHandler: nothing reaches the terminal unless an
application (the standalone app, a user's script) attaches a handler.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

LOG = logging.getLogger("gcl_engine.io")
_ADDRESS = re.compile(r"\s*\(0x[0-9a-fA-F]+\)")
_SOURCE_LINE = re.compile(r"^(WARNING|ERROR|Exception): In .*(\.cxx|\.h|\.c), line \d+\s*$")
_PREFIX = re.compile(r"^(sitk::ERROR:\s*)?([A-Za-z0-9_]+\s*:\s*)?")
_KNOWN: tuple[tuple[str, str], ...] = (
    ("Unable to determine ImageIO reader", "not a medical image (no reader for this format)"),
    ("Could not open file", "cannot be opened by the reader of this format (damaged, or a variant it does not "
                            "support)"),
    ("Unrecognized header", "the header is not one this format's reader recognises (damaged or another format)"),
    ("nifti_image_load failed", "the NIfTI reader cannot load it (damaged header or pixel data)"),
    ("File is not DICOM", "not a DICOM file"),
)
_lock = threading.RLock()
_depth = 0
_logger = None


def plain_reason(exc: BaseException, path: str | os.PathLike | None = None) -> str:
    """One plain line out of an ITK exception: known causes in words, else its last line without addresses."""
    text = str(exc)
    for marker, reason in _KNOWN:
        if marker in text:
            return reason
    return clean_line(text, path) or "unknown error"


def clean_line(text: str, path: str | os.PathLike | None = None) -> str:
    """The last meaningful line of ITK text, without source paths, object addresses or the file's own path."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not _SOURCE_LINE.match(ln.strip())]
    line = lines[-1] if lines else ""
    line = line.split("ERROR:")[-1].strip()
    line = _PREFIX.sub("", _ADDRESS.sub("", line), count=1).strip()
    if path is not None:
        line = line.replace(str(path), Path(path).name)
    return line[:160]


def _log_text(level: int, text: str) -> None:
    """One log record per message, without ITK's source-line headers and object addresses."""
    lines = [_ADDRESS.sub("", ln.strip()) for ln in text.splitlines()
             if ln.strip() and not _SOURCE_LINE.match(ln.strip())]
    if lines:
        LOG.log(level, "%s", "\n".join(lines))


def install_itk_logger() -> None:
    """Route ITK's output window (warnings, debug text) into ``logging`` once per process."""
    global _logger
    if _logger is not None:
        return
    import SimpleITK as sitk

    class _ItkToLog(sitk.LoggerBase):
        def DisplayText(self, text):  # noqa: N802 - SimpleITK's names
            _log_text(logging.INFO, text)

        def DisplayErrorText(self, text):  # noqa: N802
            _log_text(logging.ERROR, text)

        def DisplayWarningText(self, text):  # noqa: N802
            _log_text(logging.WARNING, text)

        def DisplayGenericOutputText(self, text):  # noqa: N802
            _log_text(logging.INFO, text)

        def DisplayDebugText(self, text):  # noqa: N802
            _log_text(logging.DEBUG, text)

    with _lock:
        if _logger is None:
            logger = _ItkToLog()
            logger.SetName("gcl_engine.io")
            logger.SetAsGlobalITKLogger()
            _logger = logger


@contextlib.contextmanager
def native_output_to_log() -> Iterator[None]:
    """Lend C libraries a temporary file as fd 2 for the duration; log what they wrote (re-entrant).

    Process-wide while it lasts (fd 2 is one per process): another thread's stderr output in that window is
    logged too, not lost. Without a usable fd 2 (some frozen GUI apps) it does nothing.
    """
    global _depth
    install_itk_logger()
    with _lock:
        outer = _depth == 0
        _depth += 1
    saved = capture = None
    try:
        if outer:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
                capture = tempfile.TemporaryFile()
                saved = os.dup(2)
                os.dup2(capture.fileno(), 2)
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        if capture is not None:
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            capture.close()
            if text.strip():
                _log_text(logging.INFO, text)  # libraries' own diagnostics: detail for a bug report
        with _lock:
            _depth -= 1


logging.getLogger("gcl_engine").addHandler(logging.NullHandler())
install_itk_logger()  # at import: every module that reads through SimpleITK imports this one first
