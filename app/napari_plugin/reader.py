"""napari reader: medical scans (NIfTI, NRRD, MHA/MHD, DICOM folders) placed in patient space.

Every file goes through ``api.load_volume`` (the engine's checks and DICOM ordering), so what napari
shows is exactly what pre-training and fine-tuning see. A file with a ``<name>.labels.json`` sidecar
(what GCL Studio writes) opens as a labels layer with its class names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from gcl_app.layers import LayerDataTuple, image_layer_data, labels_layer_data
from gcl_app.project import read_label_names

from gcl_engine import api

FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")
DICOM_PROBE_FILES = 16


def _looks_like_dicom(path: Path) -> bool:
    """Preamble check (``DICM`` at byte 128) on a few files: cheap, and no false match on PNG folders."""
    checked = 0
    for entry in sorted(path.iterdir()):
        if not entry.is_file():
            continue
        if entry.suffix.lower() == ".dcm":
            return True
        try:
            with open(entry, "rb") as fh:
                fh.seek(128)
                if fh.read(4) == b"DICM":
                    return True
        except OSError:
            pass
        checked += 1
        if checked >= DICOM_PROBE_FILES:
            break
    return False


def is_readable(path: str | os.PathLike) -> bool:
    p = Path(path)
    if p.is_dir():
        return _looks_like_dicom(p)
    return p.name.lower().endswith(FILE_SUFFIXES)


def get_reader(path: str | Sequence[str]) -> Callable[[str | Sequence[str]], list[LayerDataTuple]] | None:
    """napari's reader hook: a reading function when every path is a scan this plugin understands."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(is_readable(p) for p in paths):
        return None
    return read_scans


def read_scans(path: str | Sequence[str]) -> list[LayerDataTuple]:
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    return [read_scan(p) for p in paths]


def read_scan(path: str | os.PathLike) -> LayerDataTuple:
    """One layer per scan: labels (integer pixels and a names sidecar) or image."""
    volume = api.load_volume(path)
    names = read_label_names(path)
    if names is not None and np.issubdtype(volume.array.dtype, np.integer):
        return labels_layer_data(volume.array, volume, names, name=volume.meta.volume_id)
    return image_layer_data(volume)
