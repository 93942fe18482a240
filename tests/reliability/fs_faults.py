"""A small tmpfs that fills up or turns read-only: real ENOSPC / EROFS from the kernel, not a mock."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextmanager
def small_tmpfs(parent: Path, size_kb: int) -> Iterator[Path]:
    """Mount a ``size_kb`` tmpfs under ``parent`` (root only; CI runs as root)."""
    point = parent / f"tmpfs-{uuid.uuid4().hex[:6]}"
    point.mkdir()
    done = _mount(["-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(point)])
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def remount(point: Path, options: str) -> None:
    done = _mount(["-o", f"remount,{options}", str(point)])
    assert done.returncode == 0, done.stderr


def fill(point: Path, leave_kb: int = 4) -> Path:
    """Fill the file system until about ``leave_kb`` remain."""
    filler = point / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    size = filler.stat().st_size
    with open(filler, "r+b") as fh:
        fh.truncate(max(0, size - leave_kb * 1024))
    return filler
