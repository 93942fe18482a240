"""Open the volume a point of the map came from (the GUI shows it at the point's slice)."""

from __future__ import annotations

from pathlib import Path

from gcl_engine.errors import InputError
from gcl_engine.io.folder_index import discover
from gcl_engine.io.loading import load_volumes, source_of_file
from gcl_engine.io.volume import Volume


def load_scanned_volume(source: str | Path, volume_id: str) -> Volume:
    """The volume ``volume_id`` of a scanned source (a file, a time point of a 4D file, a DICOM series)."""
    path = Path(source)
    if not path.exists():
        raise InputError(path, "the scan is not there any more (moved or deleted since the map was made)")
    candidates = discover(path)[0] if path.is_dir() else [source_of_file(path)]
    found_any = False
    for src in candidates:
        for volume in load_volumes(src):
            found_any = True
            if volume.meta.volume_id == volume_id:
                return volume
    if not found_any:
        raise InputError(path, "no readable volume here")
    raise InputError(path, f"no volume {volume_id!r} in it any more (the folder changed since the map was made)")
