"""Load volumes: one per 3D image, one per time point of a 4D file, one per DICOM series.

Each source is checked from its header first (:mod:`header_checks`), then read once: SimpleITK for the
formats it knows, nibabel for the rest and for float NIfTI pixels (SimpleITK's NIfTI reader turns NaN
into 0, so the NaN policy could not see them). Arrays keep SimpleITK's (k, j, i) order and stored pixel
type: conversion is preprocessing's job.

Non-finite voxels (SPM, FSL and resampling tools write NaN outside the field of view) become the scan's
finite minimum, with a note naming the file and the count; a scan that is mostly non-finite is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from gcl_engine.errors import InputError
from gcl_engine.io import dicom, formats, nibabel_io
from gcl_engine.io.header_checks import ImageInfo, check_complete, check_loadable, nifti_layout, read_image_info
from gcl_engine.io.itk_messages import native_output_to_log, plain_reason
from gcl_engine.io.naming import guess_modality, series_from_stem, subject_key
from gcl_engine.io.privacy import hash_identifier
from gcl_engine.io.volume import Geometry, Volume, VolumeMeta, VolumeSource

MOST = 0.5  # refuse a scan when more than this share of its voxels is NaN or infinite


def load_volume(path: str | os.PathLike) -> Volume:
    """The first volume of a file, or of the first valid DICOM series of a folder."""
    p = Path(path)
    if p.is_dir():
        return _dicom_volume(_first_series(p), p)
    return load_volumes(source_of_file(p))[0]


def load_volumes(source: VolumeSource) -> list[Volume]:
    """All volumes of one discovered source: one per 3D image, one per time point of a 4D file."""
    path = Path(source.path)
    if source.kind == "dicom":
        if source.files:
            files = list(source.files)
        else:
            files = [str(path)] if path.is_file() else _first_series(path)
        return [_dicom_volume(files, path)]
    return _load_image_file(path)


def load_one(source: VolumeSource, time_index: int | None) -> Volume:
    """Exactly the volume a scan record stands for: the series of ``source``, at ``time_index`` if 4D."""
    volumes = load_volumes(source)
    if time_index is None:
        return volumes[0]
    found = [v for v in volumes if v.meta.time_index == time_index]
    if not found:
        raise InputError(source.path, f"has no time point {time_index} (it holds {len(volumes)})")
    return found[0]


def count_volumes(source: VolumeSource) -> int:
    """How many volumes a source holds, from its header (a 4D file: its time points); 1 when unsure."""
    if source.kind == "dicom":
        return 1
    try:
        info = read_image_info(source.path)
    except InputError:
        return 1
    return int(info.size[3]) if info.dimension == 4 else 1


def source_of_file(path: Path) -> VolumeSource:
    """The source of a single file (a DICOM file is a one-file series)."""
    fmt = formats.format_of(path) if path.is_file() else None
    if fmt is formats.DICOM:
        return VolumeSource(str(path), "dicom", (str(path),))
    return VolumeSource(str(path), formats.source_kind(fmt))


def _first_series(folder: Path) -> list[str]:
    groups = dicom.series_in_folder(folder)
    if not groups:
        looks_like_file = folder.name.lower().endswith(formats.SCAN_SUFFIXES)
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
    fmt = formats.format_of(path)
    if fmt is not None and fmt.reader == "nibabel":
        arrays, geometry, notes = nibabel_io.read_volumes(path, fmt)
    else:
        arrays, geometry = _itk_frames(path, info)
        notes = []
    arrays, nan_note = replace_nonfinite(arrays, path)
    notes = tuple(notes + ([nan_note] if nan_note else []))
    stem = formats.file_stem(path)
    if len(arrays) == 1:
        return [_file_volume(arrays[0], geometry, path, stem, None, 1, notes)]
    return [_file_volume(a, geometry, path, stem, t, len(arrays), notes) for t, a in enumerate(arrays)]


def _itk_frames(path: Path, info: ImageInfo) -> tuple[list[np.ndarray], Geometry]:
    """(k, j, i) arrays per time point and the geometry, by SimpleITK (pixels of float NIfTI by nibabel)."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")) and nifti_layout(path).is_float:
        return nibabel_io.nifti_frames(path), _geometry_of_info(info)
    try:
        with native_output_to_log():
            image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(path, plain_reason(exc, path)) from None
    geometry = geometry_of(image)
    if image.GetDimension() == 3:
        return [sitk.GetArrayFromImage(image)], geometry
    size = list(image.GetSize()[:3]) + [0]
    frames = [sitk.GetArrayFromImage(sitk.Extract(image, size, [0, 0, 0, t])) for t in range(image.GetSize()[3])]
    return frames, geometry


def replace_nonfinite(arrays: list[np.ndarray], path: Path) -> tuple[list[np.ndarray], str | None]:
    """The module docstring's NaN policy over all volumes of one file; returns the arrays and a note."""
    if not arrays or arrays[0].dtype.kind != "f":
        return arrays, None
    finite = [np.isfinite(a) for a in arrays]
    total = sum(a.size for a in arrays)
    bad = total - sum(int(np.count_nonzero(f)) for f in finite)
    if bad == 0:
        return arrays, None
    if bad > MOST * total:
        raise InputError(path, f"{bad} of {total} voxels ({bad / total:.0%}) are NaN or infinite: no usable image")
    fill = min(float(a[f].min()) for a, f in zip(arrays, finite, strict=True) if f.any())
    fixed = [a if f.all() else np.where(f, a, a.dtype.type(fill)) for a, f in zip(arrays, finite, strict=True)]
    note = (f"{path.name}: {bad} voxel(s) NaN or infinite ({bad / total:.2%} of the scan), "
            f"set to its minimum {fill:g}")
    return fixed, note


def _file_volume(array: np.ndarray, geometry: Geometry, path: Path, stem: str, t: int | None, n_t: int,
                 notes: tuple[str, ...]) -> Volume:
    meta = VolumeMeta(
        source=str(path),
        volume_id=stem if t is None else f"{stem}_t{t}",
        modality=guess_modality(array, stem),
        series=series_from_stem(stem),
        subject_hash=hash_identifier(subject_key(stem)),
        time_index=t,
        n_time_points=n_t,
        notes=notes,
    )
    return Volume(array, geometry, meta)


def _dicom_volume(files: list[str], where: Path) -> Volume:
    with native_output_to_log():
        image, info = dicom.read_series(files, where)
    arrays, note = replace_nonfinite([sitk.GetArrayFromImage(image)], where)
    array = arrays[0]
    name = formats.file_stem(where) if where.is_file() else where.name
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
        notes=(note,) if note else (),
    )
    return Volume(array, geometry_of(image), meta)


def geometry_of(image: sitk.Image) -> Geometry:
    """3D geometry of a 3D image (or of the spatial part of a 4D one)."""
    n = image.GetDimension()
    return _geometry(image.GetSpacing(), image.GetOrigin(), image.GetDirection(), n)


def _geometry_of_info(info: ImageInfo) -> Geometry:
    return _geometry(info.spacing, info.origin, info.direction, info.dimension)


def _geometry(spacing, origin, direction, n: int) -> Geometry:
    d = np.array(direction, dtype=float).reshape(n, n)[:3, :3].ravel()
    return Geometry(
        spacing=tuple(float(v) for v in spacing[:3]),
        origin=tuple(float(v) for v in origin[:3]),
        direction=tuple(float(v) for v in d),
    )
