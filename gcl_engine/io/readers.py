"""Read scans (NIfTI, NRRD, MHA, DICOM) into :class:`Volume` objects, refusing what would go wrong later.

Every refusal is an :class:`InputError` naming the file and the problem in one line, raised before
the pixels are allocated wherever the header can tell (dimensions, components, size, truncation).
Arrays keep SimpleITK's (k, j, i) order and stored pixel type: conversion is preprocessing's job.

Modality heuristic (when there is no DICOM Modality tag): CT when the 1st intensity percentile is at or
below -500 (air is -1000 HU; MR and PET intensities are never that negative); else a token of the file
name decides (``ct``; ``mr``, ``t1``, ``t2``, ``flair``...); else ``"unknown"`` (normalised like MR).
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from gcl_engine.errors import InputError
from gcl_engine.io import dicom
from gcl_engine.io.privacy import hash_identifier
from gcl_engine.io.volume import Geometry, Volume, VolumeMeta

if TYPE_CHECKING:
    from gcl_engine.io.folder_index import VolumeSource

MAX_VOXELS = 2**31
CT_AIR_PERCENTILE_HU = -500.0
MR_TOKENS = frozenset({"mr", "mri", "t1", "t1w", "t2", "t2w", "flair", "pd", "pdw", "dwi", "bold", "cine"})
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")
_UNCOMPRESSED = (".nii", ".mha", ".nrrd")


@dataclass(frozen=True)
class ImageInfo:
    """Header facts of one image file (ITK order); reading it never touches the pixels."""

    path: str
    dimension: int
    size: tuple[int, ...]
    spacing: tuple[float, ...]
    pixel_type: str  # e.g. "16-bit signed integer"
    n_components: int
    bytes_per_component: int
    io_name: str  # "NiftiImageIO", "GDCMImageIO", ...

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.size, dtype=object))

    @property
    def n_bytes(self) -> int:
        return self.n_voxels * self.n_components * self.bytes_per_component


def file_stem(path: str | os.PathLike) -> str:
    """Name without the image suffix (``a.nii.gz`` -> ``a``)."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def short_itk_reason(exc: RuntimeError) -> str:
    """One plain line out of an ITK exception (never the multi-line C++ trace)."""
    text = str(exc)
    if "Unable to determine ImageIO reader" in text:
        return "not a medical image (no reader for this format)"
    return dicom._short_itk_reason(exc)


# --- checks that only need the file and its header ------------------------------------------------

def check_file_basics(path: Path) -> None:
    """Existence, type, permission, emptiness and magic bytes, with a plain reason for each."""
    if not path.exists():
        raise InputError(path, "file not found" if not path.is_symlink() else "broken symbolic link")
    if path.is_dir():
        raise InputError(path, "is a folder, not an image file")
    if not os.access(path, os.R_OK):
        raise InputError(path, "permission denied (cannot read the file)")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file (0 bytes)")
    _check_magic(path)


def _read_head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except PermissionError:
        raise InputError(path, "permission denied (cannot read the file)") from None


def _check_magic(path: Path) -> None:
    name = path.name.lower()
    head = _read_head(path, 4)
    if name.endswith(".gz") and head[:2] != b"\x1f\x8b":
        raise InputError(path, "named .gz but not gzip-compressed (wrong magic bytes)")
    if name.endswith(".nii") and _nifti_header_size(head) is None:
        raise InputError(path, "not a NIfTI file (wrong header magic)")


def _nifti_header_size(head: bytes) -> int | None:
    if len(head) < 4:
        return None
    for order in "<>":
        size = struct.unpack(order + "i", head[:4])[0]
        if size in (348, 540):
            return size
    return None


def read_image_info(path: str | os.PathLike) -> ImageInfo:
    """Header of an image file via ``ImageFileReader.ReadImageInformation`` (no pixels are read)."""
    p = Path(path)
    check_file_basics(p)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(p, short_itk_reason(exc)) from None
    pixel_id = reader.GetPixelID()
    return ImageInfo(
        path=str(p),
        dimension=reader.GetDimension(),
        size=tuple(int(v) for v in reader.GetSize()),
        spacing=tuple(float(v) for v in reader.GetSpacing()),
        pixel_type=sitk.GetPixelIDValueAsString(pixel_id),
        n_components=int(reader.GetNumberOfComponents()),
        bytes_per_component=_bytes_per_component(pixel_id),
        io_name=reader.GetImageIO() or _io_name(p),
    )


def _io_name(path: Path) -> str:
    try:
        return sitk.ImageFileReader.GetImageIOFromFileName(str(path))
    except RuntimeError:
        return ""


def _bytes_per_component(pixel_id: int) -> int:
    try:
        return int(sitk.GetArrayViewFromImage(sitk.Image([1, 1], pixel_id)).dtype.itemsize)
    except (RuntimeError, TypeError, ValueError):
        return 1


def check_loadable(info: ImageInfo) -> None:
    """Refuse what GCL cannot use as a grey-level 3D (or 4D time) scan, from the header alone."""
    dims = "x".join(str(s) for s in info.size)
    if info.dimension < 3:
        raise InputError(info.path, f"2D image ({dims}): a 3D scan is needed")
    if info.dimension > 4:
        raise InputError(info.path, f"{info.dimension}D image ({dims}): only 3D and 4D scans can be used")
    if info.size[2] < 2:
        raise InputError(info.path, f"a single slice ({dims}): a 3D scan is needed")
    if info.n_components > 1:
        raise InputError(
            info.path, f"{info.n_components} components per voxel (RGB?): a grey-level scan is needed"
        )
    if "complex" in info.pixel_type:
        raise InputError(info.path, "complex-valued pixels are not supported")
    if info.n_voxels > MAX_VOXELS:
        raise InputError(
            info.path, f"header claims {dims} = {info.n_voxels:.3g} voxels, over the 2**31 limit"
        )


def check_complete(info: ImageInfo) -> None:
    """Refuse files whose pixel data is shorter than the header says (SimpleITK would read garbage)."""
    path = Path(info.path)
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        _check_gzip_nifti(path, info)
        return
    if name.endswith(_UNCOMPRESSED) and _raw_inline_payload(path):
        size = path.stat().st_size
        if size < info.n_bytes:
            raise InputError(path, f"truncated: header needs {info.n_bytes} pixel bytes, file has {size}")


def _raw_inline_payload(path: Path) -> bool:
    """True when the pixels follow the header uncompressed in the same file."""
    name = path.name.lower()
    if name.endswith(".nii"):
        return True
    head = _read_head(path, 4096).decode("latin-1")
    if name.endswith(".mha"):
        return "ElementDataFile = LOCAL" in head and not re.search(r"CompressedData\s*=\s*True", head)
    return bool(re.search(r"encoding:\s*raw", head)) and "data file" not in head


def _check_gzip_nifti(path: Path, info: ImageInfo) -> None:
    """Cheap test first (gzip size trailer == header size), a full streamed check only when it disagrees."""
    needed = _nifti_layout(path)[0] + info.n_bytes
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        trailer = struct.unpack("<I", fh.read(4))[0]
    if trailer == needed % 2**32:
        return
    total = _gunzipped_size(path)
    if total is None:
        raise InputError(path, "truncated or corrupt gzip file (the compressed stream ends early)")
    if total < needed:
        raise InputError(path, f"truncated: the header needs {needed} bytes, the file unpacks to {total}")


def _nifti_layout(path: Path) -> tuple[int, str]:
    """(offset of the pixel data, byte order '<' or '>') from a NIfTI-1/2 header, gzipped or not."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(176)
    except (OSError, EOFError, zlib.error):
        raise InputError(path, "truncated or corrupt gzip file (cannot unpack the header)") from None
    size = _nifti_header_size(head)
    if size is None:
        raise InputError(path, "not a NIfTI file (wrong header magic)")
    order = "<" if struct.unpack("<i", head[:4])[0] == size else ">"
    if size == 348:
        return int(struct.unpack(order + "f", head[108:112])[0]), order
    return int(struct.unpack(order + "q", head[168:176])[0]), order


def count_nonfinite_nifti(path: Path, info: ImageInfo, chunk: int = 1 << 24) -> int:
    """NaN/inf voxels counted in the file itself: ITK's NIfTI reader silently turns them into 0."""
    offset, order = _nifti_layout(path)
    dtype = np.dtype(f"{order}f{info.bytes_per_component}")
    step = chunk - chunk % dtype.itemsize
    remaining, bad = info.n_bytes, 0
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        fh.seek(offset)
        while remaining > 0:
            data = fh.read(min(step, remaining))
            if not data:
                break
            values = np.frombuffer(data[: len(data) - len(data) % dtype.itemsize], dtype)
            bad += int(values.size - np.count_nonzero(np.isfinite(values)))
            remaining -= len(data)
    return bad


def _gunzipped_size(path: Path, chunk: int = 1 << 20) -> int | None:
    """Unpacked size of a (multi-member) gzip file in constant memory; ``None`` if a member is cut short."""
    total, dec = 0, zlib.decompressobj(16 + zlib.MAX_WBITS)
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            while data:
                if dec.eof:
                    data, dec = dec.unused_data + data, zlib.decompressobj(16 + zlib.MAX_WBITS)
                try:
                    total += len(dec.decompress(data, 1 << 24))
                except zlib.error:
                    return None
                data = dec.unconsumed_tail
    total += len(dec.flush())
    return total if dec.eof else None


# --- loading --------------------------------------------------------------------------------------

def load_volume(path: str | os.PathLike) -> Volume:
    """The first volume of a file, or of the first valid DICOM series of a folder."""
    p = Path(path)
    if p.is_dir():
        return _dicom_volume(_first_series(p), p)
    return load_volumes(_file_source(p))[0]


def load_volumes(source: VolumeSource) -> list[Volume]:
    """All volumes of one discovered source: one per 3D image, one per time point of a 4D NIfTI."""
    path = Path(source.path)
    if source.kind == "dicom":
        if source.files:
            files = list(source.files)
        else:
            files = [str(path)] if path.is_file() else _first_series(path)
        return [_dicom_volume(files, path)]
    return _load_image_file(path)


def _file_source(path: Path) -> VolumeSource:
    from gcl_engine.io.folder_index import VolumeSource  # runtime import: folder_index imports this module

    if path.is_file() and (dicom.has_dicom_magic(str(path)) or path.suffix.lower() == ".dcm"):
        return VolumeSource(str(path), "dicom", (str(path),))
    return VolumeSource(str(path), "other")


def _first_series(folder: Path) -> list[str]:
    groups = dicom.series_in_folder(folder)
    if not groups:
        looks_like_file = folder.name.lower().endswith(IMAGE_SUFFIXES)
        reason = "is a folder, not an image file" if looks_like_file else "no DICOM series in this folder"
        raise InputError(folder, reason)
    first_error: InputError | None = None
    for group in groups:
        try:
            dicom.check_series(group, folder)
            return [h.path for h in group]
        except InputError as exc:
            first_error = first_error or exc
    raise first_error  # type: ignore[misc]


def _load_image_file(path: Path) -> list[Volume]:
    info = read_image_info(path)
    if info.io_name == "GDCMImageIO":
        return [_dicom_volume([str(path)], path)]
    check_loadable(info)
    check_complete(info)
    if "float" in info.pixel_type and path.name.lower().endswith((".nii", ".nii.gz")):
        _raise_if_nonfinite(count_nonfinite_nifti(path, info), path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(path, short_itk_reason(exc)) from None
    stem = file_stem(path)
    if image.GetDimension() == 3:
        return [_file_volume(image, path, stem, None, 1)]
    n = image.GetSize()[3]
    size = list(image.GetSize()[:3]) + [0]
    return [_file_volume(sitk.Extract(image, size, [0, 0, 0, t]), path, stem, t, n) for t in range(n)]


def _file_volume(image: sitk.Image, path: Path, stem: str, t: int | None, n_t: int) -> Volume:
    array = sitk.GetArrayFromImage(image)
    _check_finite(array, path)
    meta = VolumeMeta(
        source=str(path),
        volume_id=stem if t is None else f"{stem}_t{t}",
        modality=guess_modality(array, stem),
        series=series_from_stem(stem),
        subject_hash=hash_identifier(subject_key(stem)),
        time_index=t,
        n_time_points=n_t,
    )
    return Volume(array, geometry_of(image), meta)


def _dicom_volume(files: list[str], where: Path) -> Volume:
    image, info = dicom.read_series(files, where)
    array = sitk.GetArrayFromImage(image)
    _check_finite(array, where)
    name = file_stem(where) if where.is_file() else where.name
    modality = info.modality if info.modality != "unknown" else guess_modality(array, name)
    meta = VolumeMeta(
        source=str(where),
        volume_id=f"{name}_s{info.series_number}" if info.series_number and where.is_dir() else name,
        modality=modality,
        series=info.series_description or series_from_stem(name),
        subject_hash=info.subject_hash,
        n_time_points=info.n_time_points,
        extra={**info.extra, "dicom_files": str(len(files))},
        slice_phase=info.slice_phase,
    )
    return Volume(array, geometry_of(image), meta)


def _check_finite(array: np.ndarray, path: Path) -> None:
    if array.dtype.kind == "f":
        _raise_if_nonfinite(int(array.size - np.count_nonzero(np.isfinite(array))), path)


def _raise_if_nonfinite(n_bad: int, path: Path) -> None:
    if n_bad:
        raise InputError(path, f"{n_bad} voxel(s) are NaN or infinite: fix or mask them before use")


def geometry_of(image: sitk.Image) -> Geometry:
    """3D geometry of a 3D image (or of the spatial part of a 4D one)."""
    d = np.array(image.GetDirection(), dtype=float)
    n = image.GetDimension()
    direction = d.reshape(n, n)[:3, :3].ravel()
    return Geometry(
        spacing=tuple(float(v) for v in image.GetSpacing()[:3]),
        origin=tuple(float(v) for v in image.GetOrigin()[:3]),
        direction=tuple(float(v) for v in direction),
    )


# --- meta labels from names and intensities --------------------------------------------------------

def guess_modality(array: np.ndarray, name: str) -> str:
    """See the module docstring; a strided sample keeps it cheap on big volumes."""
    flat = array.reshape(-1)
    sample = flat[:: max(1, flat.size // 500_000)]
    if sample.size and float(np.percentile(sample, 1)) <= CT_AIR_PERCENTILE_HU:
        return "CT"
    tokens = set(re.split(r"[^a-z0-9]+", name.lower()))
    if "ct" in tokens:
        return "CT"
    return "MR" if tokens & MR_TOKENS else "unknown"


def series_from_stem(stem: str) -> str:
    """Series name from a file name: drop BIDS key-value parts, number tokens and trailing counters.

    ``sub-01_ses-2_T1w`` -> ``T1w``; ``brain_001`` -> ``brain``; ``patient007_frame01`` -> ``patient_frame``.
    """
    kept = []
    for token in re.split(r"[_\s.]+", stem):
        if not token or "-" in token or token.isdigit():
            continue
        kept.append(re.sub(r"(?<=[A-Za-z])\d{2,}$", "", token))
    return "_".join(kept)


def subject_key(stem: str) -> str:
    """What identifies the subject in a file name: the BIDS ``sub-`` entity when present, else the stem."""
    match = re.search(r"(?:^|_)(sub-[A-Za-z0-9]+)", stem)
    return match.group(1) if match else stem
