"""Atomic file writes: a crash or a full disk never leaves a half-written output behind.

The temporary file lives in the target's folder (``os.replace`` is only atomic within one file system)
and keeps the target's suffix, so that SimpleITK picks the writer from the name.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gcl_engine.errors import OutputError

_PROBLEMS = {
    errno.ENOSPC: "disk full",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    getattr(errno, "EDQUOT", -1001): "disk quota exceeded",
}


def _suffix(path: Path) -> str:
    """Full suffix for double extensions (``.nii.gz``), else the last one."""
    if len(path.suffixes) >= 2 and path.suffixes[-1].lower() == ".gz":
        return "".join(path.suffixes[-2:])
    return path.suffix


def _stem_and_suffix(path: Path) -> tuple[str, str]:
    suffix = _suffix(path)
    return (path.name[: len(path.name) - len(suffix)] if suffix else path.name), suffix


def temp_path_for(path: Path) -> Path:
    """``<stem>.tmp-<pid>-<random><suffix>`` beside ``path`` (the pid tells a dead writer's leftovers)."""
    stem, suffix = _stem_and_suffix(path)
    return path.with_name(f"{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # no cheap check: keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete temporary siblings of ``path`` left by writers that were killed (their process is gone)."""
    stem, suffix = _stem_and_suffix(path)
    removed = []
    try:
        candidates = list(path.parent.glob(f"{stem}.tmp-*{suffix}"))
    except OSError:
        return removed
    for tmp in candidates:
        pid_text = tmp.name[len(stem) + len(".tmp-"):].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            _remove_quietly(tmp)
            removed.append(tmp)
    return removed


def os_error_to_output_error(path: Path, exc: OSError) -> OutputError | None:
    """Translate the OS errors a user can act on; ``None`` for the others."""
    problem = _PROBLEMS.get(exc.errno or -1)
    if problem is None and isinstance(exc, PermissionError):
        problem = "permission denied"
    return None if problem is None else OutputError(f"cannot write {path}: {problem}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; not possible on Windows, where it is skipped."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any failure it is removed."""
    target = Path(path)
    remove_stale_temps(target)
    tmp = temp_path_for(target)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"cannot write {target}: the writer produced no file")
        _fsync_file(tmp)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        _remove_quietly(tmp)
        translated = os_error_to_output_error(target, exc)
        if translated is None:
            raise
        raise translated from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        pass


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (newlines as given) and return the path."""
    return atomic_write_bytes(path, text.encode(encoding))
