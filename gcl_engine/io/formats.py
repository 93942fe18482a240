"""The one table of scan formats: suffixes, magic bytes, which library reads each, and what to pass over.

Scan, predict and the napari reader all ask this module what a path is, so a format added here is found,
listed, opened and predicted everywhere at once. Pure Python (no SimpleITK, nibabel or torch): the napari
reader's "can I open this?" and the folder walker's first look cost a few bytes of each file.

Readers: ``itk`` (SimpleITK), ``nibabel`` (what SimpleITK cannot read: NIfTI-2, FreeSurfer MGH, MINC-1,
Philips PAR/REC, AFNI, ECAT) and ``dicom`` (our own series grouping over SimpleITK's GDCM reader).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Reader = Literal["itk", "nibabel", "dicom"]


@dataclass(frozen=True)
class ScanFormat:
    """One kind of scan file; ``companions`` are data files named like the header, never scans on their own."""

    name: str
    suffixes: tuple[str, ...]  # lower case
    reader: Reader
    companions: tuple[str, ...] = ()


NIFTI = ScanFormat("NIfTI", (".nii.gz", ".nii"), "itk")
NIFTI2 = ScanFormat("NIfTI-2", (".nii.gz", ".nii"), "nibabel")  # chosen by the header size, not the suffix
MINC1 = ScanFormat("MINC-1", (".mnc",), "nibabel")  # chosen by the netCDF magic
DICOM = ScanFormat("DICOM", (".dcm", ".ima", ".dicom"), "dicom")
FORMATS: tuple[ScanFormat, ...] = (
    NIFTI,
    ScanFormat("NIfTI/Analyze pair", (".hdr",), "itk", (".img", ".img.gz")),
    ScanFormat("NRRD", (".nrrd", ".nhdr"), "itk", (".raw", ".raw.gz")),
    ScanFormat("MetaImage", (".mha", ".mhd"), "itk", (".raw", ".zraw")),
    ScanFormat("MINC", (".mnc",), "itk"),
    ScanFormat("FreeSurfer MGH", (".mgz", ".mgh"), "nibabel"),
    ScanFormat("Philips PAR/REC", (".par",), "nibabel", (".rec",)),
    ScanFormat("AFNI", (".head",), "nibabel", (".brik", ".brik.gz", ".brik.bz2")),
    ScanFormat("ECAT", (".v",), "nibabel"),
    DICOM,
)
SCAN_SUFFIXES: tuple[str, ...] = tuple(s for f in FORMATS for s in f.suffixes)
COMPANION_SUFFIXES: tuple[str, ...] = tuple(dict.fromkeys(s for f in FORMATS for s in f.companions))
SIDECAR_SUFFIXES = (".json", ".txt", ".csv", ".md", ".tsv")  # our own sidecars and users' notes
# formats of neighbouring tools that hold no voxel grid: named in the skip reason instead of "not an image"
NOT_VOLUMES: dict[str, str] = {
    ".gii": "GIFTI surface data, not a 3D scan",
    ".gii.gz": "GIFTI surface data, not a 3D scan",
    ".gii.bz2": "GIFTI surface data, not a 3D scan",
    ".trk": "tractography streamlines, not a 3D scan",
    ".tck": "tractography streamlines, not a 3D scan",
    ".annot": "FreeSurfer surface annotation, not a 3D scan",
    ".dcm.gz": "gzip-compressed DICOM: unpack it first (gunzip)",
}
NIFTI1_HEADER, NIFTI2_HEADER = 348, 540
_MAGIC_PROBE = 352


def _ends(name: str, suffixes: tuple[str, ...]) -> str | None:
    lower = name.lower()
    return next((s for s in sorted(suffixes, key=len, reverse=True) if lower.endswith(s)), None)


def file_stem(path: str | os.PathLike) -> str:
    """Name without the scan suffix (``a.nii.gz`` -> ``a``; ``anat+orig.HEAD`` -> ``anat+orig``)."""
    name = Path(path).name
    suffix = _ends(name, SCAN_SUFFIXES)
    return name[: -len(suffix)] if suffix else Path(name).stem


def is_passed_over(name: str) -> bool:
    """Hidden files, our temp files, sidecars and companions: never a scan and never worth a skip line."""
    lower = name.lower()
    return (lower.startswith(".") or ".tmp-" in lower or lower.endswith(SIDECAR_SUFFIXES)
            or _ends(lower, COMPANION_SUFFIXES) is not None)


def read_head(path: str | os.PathLike, n: int = _MAGIC_PROBE) -> bytes:
    """The first ``n`` bytes ('' when unreadable: the caller's checks name the problem)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def nifti_header_size(head: bytes) -> int | None:
    """348 (NIfTI-1 / Analyze) or 540 (NIfTI-2) from the first 4 bytes in either byte order, else None."""
    if len(head) < 4:
        return None
    for order in "<>":
        size = struct.unpack(order + "i", head[:4])[0]
        if size in (NIFTI1_HEADER, NIFTI2_HEADER):
            return size
    return None


def has_dicom_magic(path: str | os.PathLike) -> bool:
    """Part-10 files (``DICM`` at byte 128); older ACR-NEMA files are found by SimpleITK's probe instead."""
    return read_head(path, 132)[128:132] == b"DICM"


def _gunzipped_head(path: str | os.PathLike, n: int) -> bytes:
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error):
        return b""


def format_of(path: str | os.PathLike) -> ScanFormat | None:
    """The format of a file from its name and first bytes; None for anything else (SimpleITK may still probe)."""
    name = Path(path).name
    suffix = _ends(name, SCAN_SUFFIXES)
    if suffix in NIFTI.suffixes:
        head = _gunzipped_head(path, 4) if suffix.endswith(".gz") else read_head(path, 4)
        return NIFTI2 if nifti_header_size(head) == NIFTI2_HEADER else NIFTI
    if suffix == ".mnc":
        return MINC1 if read_head(path, 4)[:3] == b"CDF" else next(f for f in FORMATS if f.name == "MINC")
    if suffix is not None:
        return next(f for f in FORMATS if suffix in f.suffixes)
    return DICOM if has_dicom_magic(path) else None


def source_kind(fmt: ScanFormat | None) -> str:
    """What a scan record calls its source: 'nifti', 'nrrd', 'mha', 'minc', 'dicom', 'nibabel' or 'other'."""
    if fmt is None:
        return "other"
    if fmt.reader == "nibabel":
        return "nibabel"
    kinds = {"NIfTI": "nifti", "NIfTI/Analyze pair": "nifti", "NRRD": "nrrd", "MetaImage": "mha", "MINC": "minc",
             "DICOM": "dicom"}
    return kinds.get(fmt.name, "other")


def not_a_volume(path: str | os.PathLike) -> str | None:
    """The plain reason for a known non-volume format (surfaces, streamlines, gzipped DICOM), else None."""
    suffix = _ends(Path(path).name, tuple(NOT_VOLUMES))
    return NOT_VOLUMES[suffix] if suffix else None


def looks_like_dicom_folder(folder: str | os.PathLike, probe: int = 16) -> bool:
    """A folder holding DICOM files (the first ``probe`` files are sniffed): what the napari reader opens."""
    checked = 0
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return False
    for entry in entries:
        if not entry.is_file() or is_passed_over(entry.name):
            continue
        if format_of(entry.path) is DICOM:
            return True
        checked += 1
        if checked >= probe:
            break
    return False


def is_scan_path(path: str | os.PathLike) -> bool:
    """What the napari reader accepts: a file of a format in the table, or a folder of DICOM files."""
    p = Path(path)
    if p.is_dir():
        return looks_like_dicom_folder(p)
    return not is_passed_over(p.name) and _ends(p.name, SCAN_SUFFIXES) is not None
