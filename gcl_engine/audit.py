"""One audit line per export: which model made which mask, from which scan, when.

A hospital asked later "which model produced this segmentation?" must be able to answer from the log alone, so
every export (masks as NIfTI or DICOM SEG, models as ONNX) writes one ``AUDIT {json}`` line to the ``gcl_engine``
log (see :mod:`gcl_engine.logs`): the model file and the SHA-256 of its bytes, the input and output paths, the
format and the time in UTC. Paths only: no header field is read here, so no patient identifier can enter.
``grep AUDIT gcl-studio.log*`` lists them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from gcl_engine import __version__

logger = logging.getLogger("gcl_engine.audit")
AUDIT_PREFIX = "AUDIT "


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, cached by (path, size, mtime): a folder prediction hashes its model once."""
    p = Path(path).resolve()
    stat = p.stat()
    return _sha256(str(p), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_export(kind: str, output: str | os.PathLike, inputs: Sequence[str | os.PathLike] = (),
                  model: str | os.PathLike | None = None) -> dict:
    """Log the audit line of one export that has been written; returns the record."""
    record = {
        "event": "export",
        "format": kind,
        "output": str(Path(output).resolve()),
        "inputs": [str(Path(p).resolve()) for p in inputs if p],
        "model": str(Path(model).resolve()) if model else None,
        "model_sha256": file_sha256(model) if model and Path(model).is_file() else None,
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "engine_version": __version__,
    }
    logger.info(AUDIT_PREFIX + json.dumps(record, sort_keys=True))
    return record
