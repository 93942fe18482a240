"""Open the volume a point of the map came from (the GUI shows it at the point's slice)."""

from __future__ import annotations

from pathlib import Path

from gcl_engine.errors import InputError
from gcl_engine.io.folder_index import VolumeSource, discover, kind_of
from gcl_engine.io.readers import load_volumes
from gcl_engine.io.volume import Volume


def load_scanned_volume(source: str | Path, volume_id: str) -> Volume:
    """The volume ``volume_id`` of a scanned source (a file, a time point of a 4D file, a DICOM series)."""
    path = Path(source)
    if not path.exists():
        raise InputError(path, "the scan is not there any more (moved or deleted since the map was made)")
    candidates = discover(path)[0] if path.is_dir() else [VolumeSource(str(path), kind_of(str(path)))]
    first = None
    for src in candidates:
        for volume in load_volumes(src):
            first = first or volume
            if volume.meta.volume_id == volume_id:
                return volume
    if first is None:
        raise InputError(path, "no readable volume here")
    raise InputError(path, f"no volume {volume_id!r} in it any more (the folder changed since the map was made)")
