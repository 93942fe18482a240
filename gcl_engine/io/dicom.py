"""DICOM series: group files into series, order slices, refuse stacks that would be silently wrong.

Why our own grouping instead of GDCM's ``GetGDCMSeriesIDs``: GDCM groups per folder and by
SeriesInstanceUID only, so a folder whose UIDs are empty (the TotalSegmentator example) or whose UID is
shared by scans of different geometry comes back as one broken stack. We read every header once
(``ReadImageInformation``: no pixel decoding) and group by UID *and* geometry (orientation, in-plane
size, pixel spacing), then order along the slice normal. Raw patient identifiers are hashed on read.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from gcl_engine.errors import InputError
from gcl_engine.io.itk_messages import native_output_to_log, plain_reason
from gcl_engine.io.privacy import hash_identifier, machine_salt

GAP_FACTOR = 1.5  # a gap this many times the median gap means a slice is missing
SAME_POSITION_MM = 1e-3
NOT_SCAN_MODALITIES = frozenset({"SEG", "RTSTRUCT", "RTDOSE", "RTPLAN", "SR", "PR", "KO", "REG"})
TEMPORAL_FRAME_POINTERS = ("0018,1063", "0018,1065", "0054,0070", "0020,9153")  # frame time(s), trigger


@dataclass(frozen=True)
class DicomHeader:
    """What grouping and ordering need from one file; ``patient_hash`` is salted, never the raw ID."""

    path: str
    series_uid: str
    size: tuple[int, int, int]  # columns, rows, frames
    spacing: tuple[float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 values, row-major; column 2 is the slice normal
    series_description: str = ""
    series_number: str = ""
    modality: str = ""
    patient_hash: str = ""
    temporal_frames: bool = False
    slice_thickness: float | None = None
    n_components: int = 1

    @property
    def n_frames(self) -> int:
        return self.size[2]

    @property
    def normal(self) -> np.ndarray:
        d = self.direction
        return np.array([d[2], d[5], d[8]])

    def geometry_key(self) -> tuple:
        """Files of one stack share this key (rounded so float noise in headers does not split them)."""
        return (
            self.series_uid,
            tuple(round(v, 3) for v in self.direction),
            self.size[:2],
            tuple(round(v, 4) for v in self.spacing),
        )


@dataclass
class DicomInfo:
    """Meta data of a read series, identifier-free."""

    modality: str
    series_description: str
    series_number: str
    subject_hash: str
    slice_phase: tuple[int, ...] | None = None
    n_time_points: int = 1
    extra: dict[str, str] = field(default_factory=dict)


def _tag(reader: sitk.ImageFileReader, key: str) -> str:
    return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""


def _float_or_none(text: str) -> float | None:
    try:
        return float(text.split("\\")[0])
    except ValueError:
        return None


def read_header(path: str) -> DicomHeader | None:
    """Header of one DICOM image file, or ``None`` when it holds no image (DICOMDIR, report, not DICOM).

    Remembered per file version (path, size, modification and change times): a scan reads every header at
    discovery and again when it loads the series; the second time costs a ``stat``.
    """
    try:
        st = os.stat(path)
    except OSError:
        return _read_header(str(path))
    # the salt too: the patient hash it holds depends on it
    return _remembered_header(str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, machine_salt())


@functools.lru_cache(maxsize=8192)
def _remembered_header(path: str, size: int, mtime_ns: int, ctime_ns: int, salt: bytes) -> DicomHeader | None:
    return _read_header(path)


def _read_header(path: str) -> DicomHeader | None:
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    size = tuple(reader.GetSize()) + (1,) * (3 - reader.GetDimension())
    if reader.GetDimension() < 2 or not _tag(reader, "0028|0010"):
        return None
    patient = _tag(reader, "0010|0020")
    return DicomHeader(
        path=str(path),
        series_uid=_tag(reader, "0020|000e"),
        size=(int(size[0]), int(size[1]), int(size[2])),
        spacing=tuple(float(v) for v in reader.GetSpacing()[:2]),
        origin=tuple(float(v) for v in (tuple(reader.GetOrigin()) + (0.0,))[:3]),
        direction=_direction3(reader),
        series_description=_tag(reader, "0008|103e"),
        series_number=_tag(reader, "0020|0011"),
        modality=_tag(reader, "0008|0060"),
        patient_hash=hash_identifier(patient) if patient else "",
        temporal_frames=_is_temporal(_tag(reader, "0028|0009")),
        slice_thickness=_float_or_none(_tag(reader, "0018|0050")),
        n_components=int(reader.GetNumberOfComponents()),
    )


def _is_temporal(frame_pointer: str) -> bool:
    """Frames of a multi-frame file are time points when the Frame Increment Pointer names a time tag."""
    text = frame_pointer.replace("|", ",").lower()
    return any(p in text for p in TEMPORAL_FRAME_POINTERS)


def _direction3(reader: sitk.ImageFileReader) -> tuple[float, ...]:
    d = np.array(reader.GetDirection(), dtype=float)
    n = int(round(np.sqrt(d.size)))
    if n < 3:
        return (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    return tuple(float(v) for v in d.reshape(n, n)[:3, :3].ravel())


def group_series(headers: Sequence[DicomHeader]) -> list[list[DicomHeader]]:
    """Split into stacks by UID and geometry; a multi-frame file is a stack of its own. Each is ordered."""
    groups: dict[tuple, list[DicomHeader]] = {}
    for h in headers:
        key = ("multiframe", h.path) if h.n_frames > 1 else h.geometry_key()
        groups.setdefault(key, []).append(h)
    ordered = [order_slices(g) for g in groups.values()]
    return sorted(ordered, key=lambda g: g[0].path)


def order_slices(headers: Sequence[DicomHeader]) -> list[DicomHeader]:
    """Sort by position along the slice normal (file names and instance numbers are not trusted)."""
    normal = headers[0].normal
    return sorted(headers, key=lambda h: (float(np.dot(h.origin, normal)), h.path))


def check_series(headers: Sequence[DicomHeader], where: str | os.PathLike) -> None:
    """Raise :class:`InputError` for stacks that cannot become one correct 3D volume."""
    first = headers[0]
    if first.modality.upper() in NOT_SCAN_MODALITIES:
        raise InputError(where, f"DICOM {first.modality.upper()} object (annotations or a plan, not a scan)")
    if first.n_components > 1:
        raise InputError(where, f"{first.n_components} components per pixel (RGB?): grey levels needed")
    if len(headers) == 1:
        if headers[0].n_frames > 1:
            return
        raise InputError(where, "a single 2D DICOM slice, not a 3D series")
    if any(h.n_frames > 1 for h in headers):
        raise InputError(where, "multi-frame DICOM files mixed with other files in one series")
    orientations = {tuple(round(v, 3) for v in h.direction) for h in headers}
    if len(orientations) > 1:
        raise InputError(where, f"mixed slice orientations ({len(orientations)} different) in one series")
    shapes = {(h.size[:2], tuple(round(v, 4) for v in h.spacing)) for h in headers}
    if len(shapes) > 1:
        raise InputError(where, f"slices of different size or pixel spacing ({len(shapes)} kinds)")
    _check_gaps(order_slices(headers), where)


def slice_positions(headers: Sequence[DicomHeader]) -> np.ndarray:
    normal = headers[0].normal
    return np.array([float(np.dot(h.origin, normal)) for h in headers])


def _check_gaps(ordered: Sequence[DicomHeader], where: str | os.PathLike) -> None:
    gaps = np.diff(slice_positions(ordered))
    n_same = int(np.sum(gaps < SAME_POSITION_MM))
    if n_same:
        raise InputError(where, f"{n_same + 1} slices share one position (several phases or echoes?)")
    median = float(np.median(gaps))
    worst = int(np.argmax(gaps))
    if gaps[worst] > GAP_FACTOR * median:
        missing = int(round(gaps[worst] / median)) - 1
        raise InputError(
            where,
            f"missing slice: gap of {gaps[worst]:.2f} mm after slice {worst + 1} of {len(ordered)} "
            f"(median gap {median:.2f} mm, about {max(missing, 1)} slice(s) missing)",
        )


def headers_in(paths: Sequence[str]) -> tuple[list[DicomHeader], list[str]]:
    """Headers of the readable DICOM images among ``paths`` and the paths that are not images."""
    found, rejected = [], []
    with native_output_to_log():
        for p in paths:
            h = read_header(p)
            (found.append(h) if h is not None else rejected.append(p))
    return found, rejected


def series_in_folder(folder: str | os.PathLike) -> list[list[DicomHeader]]:
    """Every stack of DICOM images directly inside ``folder`` (not recursive)."""
    names = sorted(os.listdir(folder))
    paths = [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]
    headers, _ = headers_in(paths)
    return group_series(headers)


def read_series(files: Sequence[str], where: str | os.PathLike) -> tuple[sitk.Image, DicomInfo]:
    """Read one stack (checked and ordered here, whatever order ``files`` come in); pixels stay as stored."""
    headers, rejected = headers_in(files)
    if rejected:
        example = os.path.basename(rejected[0])
        raise InputError(where, f"{len(rejected)} file(s) are not DICOM images, e.g. {example}")
    if not headers:
        raise InputError(where, "no DICOM images")
    check_series(headers, where)
    ordered = order_slices(headers)
    image = _read_pixels(ordered, where)
    info = _series_info(ordered, where)
    if info.slice_phase is not None:
        spacing = list(image.GetSpacing())
        spacing[2] = ordered[0].slice_thickness or 1.0  # the frames share one place: the step is time, not mm
        image.SetSpacing(spacing)
    return image, info


def _read_pixels(ordered: Sequence[DicomHeader], where: str | os.PathLike) -> sitk.Image:
    try:
        if len(ordered) == 1:
            reader = sitk.ImageFileReader()
            reader.SetImageIO("GDCMImageIO")
            reader.SetFileName(ordered[0].path)
            return reader.Execute()
        series_reader = sitk.ImageSeriesReader()
        series_reader.SetImageIO("GDCMImageIO")
        series_reader.SetFileNames([h.path for h in ordered])
        return series_reader.Execute()
    except RuntimeError as exc:
        raise InputError(where, f"cannot decode the DICOM pixel data ({plain_reason(exc, where)})") from None


def _series_info(ordered: Sequence[DicomHeader], where: str | os.PathLike) -> DicomInfo:
    first = ordered[0]
    subject = first.patient_hash or hash_identifier(os.path.basename(os.path.normpath(str(where))))
    info = DicomInfo(
        modality=first.modality or "unknown",
        series_description=first.series_description,
        series_number=first.series_number,
        subject_hash=subject,
    )
    if len(ordered) == 1 and first.temporal_frames:
        info.slice_phase = tuple(range(first.n_frames))
        info.n_time_points = first.n_frames
        info.extra["frames"] = "temporal"
    return info
