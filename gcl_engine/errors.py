"""Errors the engine raises on purpose: each names the file (if any) and the problem in one line."""

from __future__ import annotations

from pathlib import Path


class GCLError(Exception):
    """Base class: a problem the user can act on (never a bug)."""


class InputError(GCLError):
    """A file or folder the engine cannot use, with the reason."""

    def __init__(self, path: str | Path | None, reason: str):
        self.path = None if path is None else Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)


class ConfigError(GCLError):
    """A configuration value that is impossible (names the field)."""


class CheckpointError(GCLError):
    """A checkpoint that is corrupt, untrusted or from another model."""


class OutputError(GCLError):
    """An output place that cannot be written (read-only, disk full, would overwrite a source scan)."""


class Cancelled(GCLError):
    """Raised inside long work when the CancelToken was set; callers treat it as a normal stop."""
