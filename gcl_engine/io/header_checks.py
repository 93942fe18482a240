"""Checks that need only a file and its header: refuse what would go wrong later, before pixels are read.

Every refusal is an :class:`InputError` naming the file and the problem in one line. The bytes a NIfTI's
pixels take come from the file's own datatype (``bitpix``), not from the type SimpleITK hands back: a
scaled int16 file (``scl_slope`` != 1) reads as float32, twice its size on disk.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from gcl_engine.errors import InputError
from gcl_engine.io import formats
from gcl_engine.io.itk_messages import native_output_to_log, plain_reason

MAX_VOXELS = 2**31
_UNCOMPRESSED = (".nii", ".mha", ".nrrd")


@dataclass(frozen=True)
class ImageInfo:
    """Header facts of one image file (ITK order: x, y, z[, t]); reading it never touches the pixels."""

    path: str
    dimension: int
    size: tuple[int, ...]
    spacing: tuple[float, ...]
    pixel_type: str  # e.g. "16-bit signed integer"
    n_components: int
    bytes_per_component: int
    io_name: str  # "NiftiImageIO", "GDCMImageIO", "nibabel MGHImage", ...
    origin: tuple[float, ...] = ()
    direction: tuple[float, ...] = ()  # row-major, dimension x dimension

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.size, dtype=object))

    @property
    def n_bytes(self) -> int:
        return self.n_voxels * self.n_components * self.bytes_per_component


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
    name = path.name.lower()
    head = formats.read_head(path, 4)
    if name.endswith(".gz") and head[:2] != b"\x1f\x8b":
        raise InputError(path, "named .gz but not gzip-compressed (wrong magic bytes)")
    if name.endswith(".nii") and formats.nifti_header_size(head) is None:
        raise InputError(path, "not a NIfTI file (wrong header magic)")


def read_image_info(path: str | os.PathLike) -> ImageInfo:
    """Header of an image file: SimpleITK's ``ReadImageInformation`` or nibabel's header (no pixels read)."""
    p = Path(path)
    check_file_basics(p)
    not_a_volume = formats.not_a_volume(p)
    if not_a_volume is not None:
        raise InputError(p, not_a_volume)
    fmt = formats.format_of(p)
    if fmt is not None and fmt.reader == "nibabel":
        from gcl_engine.io.nibabel_io import read_info

        return read_info(p, fmt)
    _check_pair(p)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        with native_output_to_log():
            reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(p, plain_reason(exc, p)) from None
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
        origin=tuple(float(v) for v in reader.GetOrigin()),
        direction=tuple(float(v) for v in reader.GetDirection()),
    )


def _check_pair(path: Path) -> None:
    """A NIfTI/Analyze ``.hdr`` needs its ``.img`` beside it: say so instead of ITK's 'load failed'."""
    if not path.name.lower().endswith(".hdr"):
        return
    stem = path.name[:-4]
    if not any((path.parent / f"{stem}{ext}").exists() for ext in (".img", ".IMG", ".img.gz")):
        raise InputError(path, f"its pixel file {stem}.img is missing (a NIfTI/Analyze pair needs both files)")


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
    if min(info.size[:3]) < 2:
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
        _check_gzip_nifti(path)
        return
    if name.endswith(".nii"):
        layout = nifti_layout(path)
        needed, size = layout.end, path.stat().st_size
        if size < needed:
            raise InputError(path, f"truncated: the header needs {needed} bytes, the file has {size}")
        return
    if name.endswith(_UNCOMPRESSED) and _raw_inline_payload(path):
        size = path.stat().st_size
        if size < info.n_bytes:
            raise InputError(path, f"truncated: header needs {info.n_bytes} pixel bytes, file has {size}")


def _raw_inline_payload(path: Path) -> bool:
    """True when an MHA or NRRD file's pixels follow its header uncompressed in the same file."""
    name = path.name.lower()
    head = formats.read_head(path, 4096).decode("latin-1")
    if name.endswith(".mha"):
        return "ElementDataFile = LOCAL" in head and not re.search(r"CompressedData\s*=\s*True", head)
    return bool(re.search(r"encoding:\s*raw", head)) and "data file" not in head


@dataclass(frozen=True)
class NiftiLayout:
    """Where a NIfTI's pixels are and how they are stored, from its own header."""

    offset: int
    order: str  # '<' or '>'
    bitpix: int
    datatype: int
    shape: tuple[int, ...]  # x, y, z[, t ...]

    @property
    def end(self) -> int:
        return self.offset + int(np.prod(self.shape, dtype=object)) * self.bitpix // 8

    @property
    def is_float(self) -> bool:
        return self.datatype in (16, 64, 1536)  # float32, float64, float128


def nifti_layout(path: Path) -> NiftiLayout:
    """The pixel layout of a NIfTI-1/2 file, gzipped or not (540 bytes of header at most are read)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(formats.NIFTI2_HEADER)
    except (OSError, EOFError, zlib.error):
        raise InputError(path, "truncated or corrupt gzip file (cannot unpack the header)") from None
    size = formats.nifti_header_size(head)
    if size is None or len(head) < size:
        raise InputError(path, "not a NIfTI file (wrong header magic)")
    order = "<" if struct.unpack("<i", head[:4])[0] == size else ">"
    if size == formats.NIFTI1_HEADER:
        dims = struct.unpack(order + "8h", head[40:56])
        datatype, bitpix = struct.unpack(order + "hh", head[70:74])
        offset = int(struct.unpack(order + "f", head[108:112])[0])
    else:
        datatype, bitpix = struct.unpack(order + "hh", head[12:16])
        dims = struct.unpack(order + "8q", head[16:80])
        offset = int(struct.unpack(order + "q", head[168:176])[0])
    n = max(1, min(int(dims[0]), 7))
    shape = tuple(max(1, int(d)) for d in dims[1:n + 1])
    return NiftiLayout(max(offset, size), order, int(bitpix), int(datatype), shape)


def _check_gzip_nifti(path: Path) -> None:
    """Cheap test first (gzip size trailer == header size), a full streamed check only when it disagrees."""
    needed = nifti_layout(path).end
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
