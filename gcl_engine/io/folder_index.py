"""Find every usable scan under a folder, and say why each other file was skipped.

Discovery reads headers only (never pixels), so a folder of hundreds of scans is indexed in seconds;
the refusals that a header can reveal (2D, 5D, RGB, huge or truncated files, broken DICOM series)
are reported here as :class:`SkippedFile` instead of failing later in the middle of pre-training.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gcl_engine.errors import InputError
from gcl_engine.events import EventSink, Progress, emit
from gcl_engine.io import dicom
from gcl_engine.io.readers import check_complete, check_loadable, read_image_info
from gcl_engine.runtime import CancelToken

PROGRESS_EVERY = 50
SIDECAR_SUFFIXES = (".json", ".txt", ".csv", ".md", ".tsv")  # our own sidecars and notes: silently ignored
COMPANION_SUFFIXES = (".raw", ".zraw", ".img")  # pixel files of .mhd / Analyze headers
_KINDS = {".nii": "nifti", ".nii.gz": "nifti", ".nrrd": "nrrd", ".nhdr": "nrrd", ".mha": "mha", ".mhd": "mha"}
NOT_IMAGE = "not a medical image"
NO_DICOM_IMAGE = "DICOM file without image data (DICOMDIR, report or damaged)"


@dataclass(frozen=True)
class VolumeSource:
    """One loadable scan: a file, or a DICOM folder plus the files of one series (``kind`` 'dicom')."""

    path: str
    kind: str  # 'nifti' | 'nrrd' | 'mha' | 'dicom' | 'other'
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


def kind_of(path: str) -> str:
    name = path.lower()
    for suffix, kind in _KINDS.items():
        if name.endswith(suffix):
            return kind
    return "dicom" if name.endswith(".dcm") else "other"


def _is_silently_ignored(name: str) -> bool:
    lower = name.lower()
    return lower.startswith(".") or ".tmp-" in lower or lower.endswith(SIDECAR_SUFFIXES) or lower.endswith(
        COMPANION_SUFFIXES
    )


def _check_folder(folder: str | os.PathLike) -> Path:
    root = Path(folder)
    if not root.exists():
        raise InputError(root, "folder not found")
    if not root.is_dir():
        raise InputError(root, "not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise InputError(root, "permission denied (cannot list the folder)")
    return root


def discover(
    folder: str | os.PathLike, on_event: EventSink | None = None, cancel: CancelToken | None = None
) -> tuple[list[VolumeSource], list[SkippedFile]]:
    """Walk ``folder`` recursively (following links, never twice into one real folder).

    Returns the usable sources (one per image file, one per DICOM series) and the skipped files with a
    one-line reason each. An empty folder gives two empty lists; a missing one raises :class:`InputError`.
    """
    root = _check_folder(folder)
    sources: list[VolumeSource] = []
    skipped: list[SkippedFile] = []
    seen_files: set[str] = set()
    done = 0
    for dirpath, filenames in _walk(root, skipped):
        dicom_files = []
        for name in filenames:
            if cancel is not None:
                cancel.raise_if_cancelled()
            done += 1
            if done % PROGRESS_EVERY == 0:
                emit(on_event, Progress("discover", done, 0, f"{len(sources)} volume(s) found"))
            result = _classify(os.path.join(dirpath, name), seen_files)
            if result == "dicom":
                dicom_files.append(os.path.join(dirpath, name))
            elif result is not None:
                (sources if isinstance(result, VolumeSource) else skipped).append(result)
        _add_dicom_series(dirpath, dicom_files, sources, skipped)
    summary = f"{len(sources)} volume(s) found, {len(skipped)} skipped"
    emit(on_event, Progress("discover", done, done, summary))
    return sorted(sources, key=lambda s: (s.path, s.files)), skipped


def _walk(root: Path, skipped: list[SkippedFile]) -> Iterable[tuple[str, list[str]]]:
    """``os.walk`` with followlinks, pruning folders whose real path was already visited (link loops)."""
    seen_dirs: set[str] = set()

    def on_error(exc: OSError) -> None:
        skipped.append(SkippedFile(str(exc.filename), "cannot list this folder (permission denied?)"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=on_error):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames[:] = []
            skipped.append(SkippedFile(dirpath, "symbolic link loop (this folder was already scanned)"))
            continue
        seen_dirs.add(real)
        dirnames.sort()
        yield dirpath, sorted(filenames)


def _classify(path: str, seen_files: set[str]) -> VolumeSource | SkippedFile | str | None:
    """A source, a skip, ``"dicom"`` (grouped later per folder) or ``None`` (silently ignored)."""
    if _is_silently_ignored(os.path.basename(path)):
        return None
    if not os.path.exists(path):
        return SkippedFile(path, "broken symbolic link")
    real = os.path.realpath(path)
    if real in seen_files:
        return SkippedFile(path, "link to a file that was already found")
    seen_files.add(real)
    kind = kind_of(path)
    if kind == "dicom" or dicom.has_dicom_magic(path):
        return "dicom"
    try:
        info = read_image_info(path)
        if info.io_name == "GDCMImageIO":
            return "dicom"
        check_loadable(info)
        check_complete(info)
    except InputError as exc:
        return SkippedFile(path, exc.reason)
    return VolumeSource(path, kind)


def _add_dicom_series(
    folder: str, files: list[str], sources: list[VolumeSource], skipped: list[SkippedFile]
) -> None:
    """One source per valid series of ``folder``; broken series and non-image DICOM files are skipped."""
    if not files:
        return
    headers, rejected = dicom.headers_in(files)
    skipped.extend(SkippedFile(p, NO_DICOM_IMAGE) for p in rejected)
    for group in dicom.group_series(headers):
        where = group[0].path if len(group) == 1 else folder
        try:
            dicom.check_series(group, where)
        except InputError as exc:
            skipped.append(SkippedFile(where, exc.reason))
            continue
        sources.append(VolumeSource(folder, "dicom", tuple(h.path for h in group)))
