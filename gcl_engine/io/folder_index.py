"""The one folder walker: every usable scan under a folder (or one file), and why each other file was skipped.

Scan, predict and the GUI all walk folders here. Discovery reads headers only (never pixels), so a folder of
hundreds of scans is indexed in seconds; the refusals a header can reveal (2D, 5D, RGB, huge or truncated
files, broken DICOM series) are reported as :class:`SkippedFile` instead of failing later in the middle of
pre-training. What a file is comes from :mod:`formats` (suffixes and magic bytes, one table).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gcl_engine.errors import InputError
from gcl_engine.events import EventSink, Progress, emit
from gcl_engine.io import dicom, formats
from gcl_engine.io.header_checks import check_complete, check_loadable, read_image_info
from gcl_engine.io.volume import VolumeSource
from gcl_engine.runtime import CancelToken

PROGRESS_EVERY = 50
NOT_IMAGE = "not a medical image"
NO_DICOM_IMAGE = "DICOM file without image data (DICOMDIR, report or damaged)"

__all__ = ["NOT_IMAGE", "NO_DICOM_IMAGE", "SkippedFile", "VolumeSource", "discover", "folder_signature"]


@dataclass(frozen=True)
class SkippedFile:
    """A file (or a DICOM folder's broken series: ``files`` lists its files) that is not used, and why."""

    path: str
    reason: str
    files: tuple[str, ...] = ()


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
    folder: str | os.PathLike, on_event: EventSink | None = None, cancel: CancelToken | None = None,
    allow_file: bool = False,
) -> tuple[list[VolumeSource], list[SkippedFile]]:
    """Walk ``folder`` recursively (following links, never twice into one real folder).

    Returns the usable sources (one per image file, one per DICOM series) and the skipped files with a
    one-line reason each. An empty folder gives two empty lists; a missing one raises :class:`InputError`.
    With ``allow_file``, a file stands for a folder holding only it (what ``gcl predict --image FILE`` walks).
    """
    if allow_file and Path(folder).is_file():
        return _discover_file(Path(folder))
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


def folder_signature(folder: str | os.PathLike) -> str:
    """A digest of what :func:`discover` would read: every file's path, size, mode, change times and link target,
    walked the same way. Equal signatures: the same discovery result (a changed, added, removed or renamed file,
    or changed permissions, changes it), so a scan can keep its discovery in its cache."""
    import hashlib

    root = _check_folder(folder)
    digest = hashlib.sha1(str(root.resolve()).encode())
    for dirpath, filenames in _walk(root, []):
        digest.update(f"d|{dirpath}|{os.path.realpath(dirpath)}".encode())
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
                entry = f"f|{name}|{st.st_size}|{st.st_mode}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
            except OSError:
                entry = f"f|{name}|missing"
            if os.path.islink(path):
                entry += f"|{os.path.realpath(path)}"
            digest.update(entry.encode())
    return digest.hexdigest()


def _discover_file(path: Path) -> tuple[list[VolumeSource], list[SkippedFile]]:
    sources: list[VolumeSource] = []
    skipped: list[SkippedFile] = []
    result = _classify(str(path), set(), named=True)
    if result == "dicom":
        _add_dicom_series(str(path.parent), [str(path)], sources, skipped, single=True)
    elif result is not None:
        (sources if isinstance(result, VolumeSource) else skipped).append(result)
    return sources, skipped


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


def _classify(path: str, seen_files: set[str], named: bool = False) -> VolumeSource | SkippedFile | str | None:
    """A source, a skip, ``"dicom"`` (grouped later per folder) or ``None`` (passed over in silence).

    ``named``: the user named this very file, so even a sidecar or companion gets a reason.
    """
    if not named and formats.is_passed_over(os.path.basename(path)):
        return None
    if not os.path.exists(path):
        return SkippedFile(path, "broken symbolic link")
    real = os.path.realpath(path)
    if real in seen_files:
        return SkippedFile(path, "link to a file that was already found")
    seen_files.add(real)
    fmt = formats.format_of(path)
    if fmt is formats.DICOM:
        return "dicom"
    try:
        info = read_image_info(path)
        if info.io_name == "GDCMImageIO":
            return "dicom"
        check_loadable(info)
        check_complete(info)
    except InputError as exc:
        return SkippedFile(path, exc.reason)
    return VolumeSource(path, formats.source_kind(fmt))


def _add_dicom_series(
    folder: str, files: list[str], sources: list[VolumeSource], skipped: list[SkippedFile], single: bool = False,
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
            skipped.append(SkippedFile(where, exc.reason, tuple(h.path for h in group) if len(group) > 1 else ()))
            continue
        sources.append(VolumeSource(group[0].path if single else folder, "dicom", tuple(h.path for h in group)))
