"""On-disk cache of normalised, resized slices: one memory-mapped ``.npy`` per volume.

Keyed by the source's content fingerprint (size, mtime and the first/last MiB of every file) and the
preprocessing config, so an edited scan or a new resolution is rebuilt and nothing stale is reused.
Training reads slices through the memory map, so folders larger than RAM train with bounded memory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from gcl_engine.config import PreprocessConfig
from gcl_engine.errors import OutputError
from gcl_engine.io.atomic import atomic_write, atomic_write_text

_PROBE = 1 << 20


def source_fingerprint(files: list[str]) -> str:
    """Cheap content hash of the files a volume comes from (never their full bytes for big files)."""
    digest = hashlib.sha1()
    for name in sorted(files):
        st = os.stat(name)
        digest.update(f"{os.path.basename(name)}|{st.st_size}|{st.st_mtime_ns}".encode())
        with open(name, "rb") as fh:
            digest.update(fh.read(_PROBE))
            if st.st_size > 2 * _PROBE:
                fh.seek(-_PROBE, os.SEEK_END)
                digest.update(fh.read(_PROBE))
    return digest.hexdigest()


class SliceCache:
    """``folder/<key>.npy`` holding float16 slices (n, size, size) of one volume."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.folder}: cannot create the cache folder ({exc.strerror})") from exc

    @staticmethod
    def key(fingerprint: str, volume_id: str, cfg: PreprocessConfig) -> str:
        blob = json.dumps({"fp": fingerprint, "vol": volume_id, "pre": asdict(cfg)}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:24]

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The memory-mapped slices, or None when absent or unreadable (a half-written file is rebuilt)."""
        p = self.path(key)
        if not p.exists():
            return None
        try:
            return np.load(p, mmap_mode="r")
        except (ValueError, OSError):
            p.unlink(missing_ok=True)
            return None

    def get_manifest(self, key: str) -> list[dict] | None:
        """What a source's volumes were (their records), so a cache hit needs no pixel read."""
        try:
            return json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put_manifest(self, key: str, rows: list[dict]) -> None:
        try:
            atomic_write_text(self.folder / f"{key}.json", json.dumps(rows))
        except OSError as exc:
            raise OutputError(f"{self.folder}: cannot write the slice cache ({exc.strerror})") from exc

    def put(self, key: str, slices: np.ndarray) -> np.ndarray:
        """Store atomically (temp file + rename) and return the memory map."""
        target = self.path(key)
        try:
            with atomic_write(target) as tmp, open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(slices, dtype=np.float16))
        except OSError as exc:
            raise OutputError(f"{target}: cannot write the slice cache ({exc.strerror})") from exc
        return np.load(target, mmap_mode="r")
