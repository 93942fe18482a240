"""Per-user state outside any project: the recent-projects list and the crash-detection session locks.

Both live in the user config folder (platformdirs; ``$GCL_STUDIO_CONFIG_DIR`` overrides it, which the
tests use). A window that has a project open holds a :class:`SessionLock`: a Qt lock file (which
records the process id, so Qt can tell a dead owner from a live one) and a JSON note naming the
project. A clean exit removes both; a crash leaves them, and the next start finds the stale lock and
offers to reopen that project, whose annotations the autosave kept.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from qtpy.QtCore import QLockFile

CONFIG_ENV = "GCL_STUDIO_CONFIG_DIR"
RECENT_FILE = "recent-projects.json"
SESSIONS_DIR = "sessions"
MAX_RECENT = 10


def config_dir() -> Path:
    """``$GCL_STUDIO_CONFIG_DIR``, else the per-user config folder of GCL Studio (created)."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        folder = Path(override)
    else:
        from platformdirs import user_config_path

        folder = user_config_path("gcl-studio", appauthor=False)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_json(path: Path, data: object) -> None:
    """Atomic write: a crash mid-write keeps the previous file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


class RecentProjects:
    """Most recent first, at most :data:`MAX_RECENT`, folders that no longer exist left out when read."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or config_dir()) / RECENT_FILE

    def _read(self) -> list[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [str(p) for p in data if isinstance(p, str)] if isinstance(data, list) else []

    def list(self) -> list[Path]:
        return [Path(p) for p in self._read() if Path(p).is_dir()]

    def add(self, project: Path) -> None:
        entry = str(Path(project).resolve())
        items = [entry, *(p for p in self._read() if p != entry)]
        _write_json(self.path, items[:MAX_RECENT])

    def remove(self, project: Path) -> None:
        entry = str(Path(project).resolve())
        _write_json(self.path, [p for p in self._read() if p != entry])


@dataclass(frozen=True)
class CrashedSession:
    """A session that ended without a clean exit: its project, and the files to clear once handled."""

    project: Path
    lock_path: Path
    note_path: Path

    def clear(self) -> None:
        self.lock_path.unlink(missing_ok=True)
        self.note_path.unlink(missing_ok=True)


class SessionLock:
    """Held while a window has a project open; ``release`` on a clean close."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = (folder or config_dir()) / SESSIONS_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / uuid.uuid4().hex
        self.lock_path, self.note_path = stem.with_suffix(".lock"), stem.with_suffix(".json")
        self._lock = QLockFile(str(self.lock_path))
        self._lock.setStaleLockTime(0)  # only a dead owner makes a lock stale, never its age

    def hold(self, project: Path) -> None:
        """Take the lock (once) and note which project is open (again at each project change)."""
        if not self._lock.isLocked() and not self._lock.tryLock(0):
            raise OSError(f"could not create the session lock {self.lock_path}")
        _write_json(self.note_path, {"project": str(Path(project).resolve()), "pid": os.getpid()})

    def release(self) -> None:
        if self._lock.isLocked():
            self._lock.unlock()
        self.note_path.unlink(missing_ok=True)


def crashed_sessions(folder: Path | None = None) -> list[CrashedSession]:
    """Sessions whose owner died (a crash, a kill, a power cut); live ones (another window) are skipped."""
    found = []
    for note in sorted(((folder or config_dir()) / SESSIONS_DIR).glob("*.json")):
        lock_path = note.with_suffix(".lock")
        probe = QLockFile(str(lock_path))
        probe.setStaleLockTime(0)
        if lock_path.exists() and not probe.tryLock(0):
            continue  # a running GCL Studio holds it
        probe.unlock()
        try:
            project = Path(json.loads(note.read_text(encoding="utf-8"))["project"])
        except (OSError, ValueError, KeyError, TypeError):
            note.unlink(missing_ok=True)
            continue
        found.append(CrashedSession(project, lock_path, note))
    return found
