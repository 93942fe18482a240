"""Write label maps and images with exactly the geometry of the scan they belong to, atomically.

A label map is useful to other tools (ITK-SNAP, 3D Slicer, nnU-Net) only if it lands on the source
voxels in patient space, so spacing, origin and direction are copied from the reference unchanged
(oblique and DICOM-derived ones included). Source scans are never overwritten.
"""

from __future__ import annotations

import colorsys
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from gcl_engine.errors import InputError, OutputError
from gcl_engine.io.atomic import atomic_write, atomic_write_text
from gcl_engine.io.label_names import (
    LABEL_MAP_SUFFIXES,
    NOTE_KEY,
    UNKNOWN_LABEL,
    UNKNOWN_NAME,
    names_note,
    names_text,
)
from gcl_engine.io.volume import Geometry, Volume

OUTPUT_SUFFIXES = LABEL_MAP_SUFFIXES
_BASE_COLOURS = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
]


def _split_suffix(path: Path) -> tuple[str, str]:
    """(name without suffix, suffix) for the supported output suffixes."""
    lower = path.name.lower()
    for suffix in OUTPUT_SUFFIXES:
        if lower.endswith(suffix):
            return path.name[: -len(suffix)], suffix
    raise OutputError(f"{path}: unsupported output format; use {', '.join(OUTPUT_SUFFIXES)}")


def sidecar_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``<name>.labels.json`` and ``<name>.label.txt`` beside the label file."""
    p = Path(path)
    stem, _ = _split_suffix(p)
    return p.with_name(f"{stem}.labels.json"), p.with_name(f"{stem}.label.txt")


def smallest_label_array(labels: np.ndarray) -> np.ndarray:
    """The labels as uint8, uint16 or uint32, whichever is smallest for the largest label."""
    arr = np.asarray(labels)
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise InputError(None, "labels must be whole numbers (got fractional, NaN or infinite values)")
    elif arr.dtype.kind not in "iu":
        raise InputError(None, f"labels must be integers, got dtype {arr.dtype}")
    low, high = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if low < 0:
        raise InputError(None, f"labels must be >= 0, found {int(low)}")
    for dtype in (np.uint8, np.uint16, np.uint32):
        if high <= np.iinfo(dtype).max:
            return arr.astype(dtype, copy=False)
    raise InputError(None, f"label {int(high)} does not fit in 32 bits")


def image_with_geometry(array: np.ndarray, geometry: Geometry) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(v) for v in geometry.spacing))
    image.SetOrigin(tuple(float(v) for v in geometry.origin))
    image.SetDirection(tuple(float(v) for v in geometry.direction))
    return image


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def refuse_source_overwrite(target: Path, sources: Iterable[str | os.PathLike]) -> None:
    """Raise :class:`OutputError` when ``target`` is a source scan or lies inside a DICOM source folder."""
    resolved = target.resolve()
    for source in sources:
        src = Path(source).resolve()
        if resolved == src:
            raise OutputError(f"{target}: refusing to overwrite the source scan")
        if src.is_dir() and _is_within(resolved, src):
            raise OutputError(f"{target}: refusing to write inside the DICOM source folder {src}")


def write_image(image: sitk.Image, target: Path) -> Path:
    """Atomic ``sitk.WriteImage`` (compressed) with ITK failures turned into plain :class:`OutputError`."""
    _split_suffix(target)
    if not target.parent.is_dir():
        raise OutputError(f"cannot write {target}: the folder {target.parent} does not exist")
    with atomic_write(target) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), useCompression=True)
        except RuntimeError:
            raise OutputError(f"cannot write {target}: {_why_unwritable(target.parent)}") from None
        if not _reads_back_equal(tmp, image):
            raise OutputError(f"cannot write {target}: {_why_unwritable(target.parent)} (the written file did not "
                              "read back whole; the previous file is intact)")
    return target


def _reads_back_equal(path: Path, image: sitk.Image) -> bool:
    """ITK's NIfTI writer reports success on a full disk and leaves a truncated file: check before the rename."""
    try:
        back = sitk.ReadImage(str(path))
    except RuntimeError:
        return False
    return back.GetSize() == image.GetSize() and np.array_equal(sitk.GetArrayViewFromImage(back),
                                                                sitk.GetArrayViewFromImage(image))


def _why_unwritable(folder: Path) -> str:
    if not os.access(folder, os.W_OK):
        return "permission denied or read-only"
    try:
        if shutil.disk_usage(folder).free < 1 << 20:
            return "disk full"
    except OSError:
        pass
    return "the image writer failed"


def _reference_parts(reference: Volume | Geometry) -> tuple[Geometry, tuple[int, ...] | None, list[str]]:
    if isinstance(reference, Volume):
        return reference.geometry, tuple(reference.array.shape), [reference.meta.source]
    if isinstance(reference, Geometry):
        return reference, None, []
    raise TypeError(f"reference must be a Volume or a Geometry, got {type(reference).__name__}")


def export_nifti(
    labels: np.ndarray,
    reference: Volume | Geometry,
    path: str | os.PathLike,
    label_names: Mapping[int, str] | Sequence[str] | None = None,
    sources: Sequence[str | os.PathLike] = (),
) -> Path:
    """Write ``labels`` (reference array shape, (k, j, i)) with the reference geometry, plus two sidecars.

    The format follows the suffix (.nii.gz, .nii, .nrrd, .mha); the pixel type is the smallest unsigned
    integer holding the largest label. Sidecars: ``<name>.labels.json`` ({index: name}) and
    ``<name>.label.txt`` (ITK-SNAP label description). The label map's header carries a digest of the
    names file (:mod:`gcl_engine.io.label_names`), so names left over from an interrupted save are never
    paired with it. Returns the label file's path.
    """
    target = Path(path)
    geometry, ref_shape, ref_sources = _reference_parts(reference)
    arr = np.asarray(labels)
    if ref_shape is not None and arr.shape != ref_shape:
        raise InputError(target, f"label shape {arr.shape} differs from the reference shape {ref_shape}")
    if arr.ndim != 3:
        raise InputError(target, f"labels must be a 3D array (k, j, i), got shape {arr.shape}")
    refuse_source_overwrite(target, [*ref_sources, *sources])
    out = smallest_label_array(arr)
    names = label_table(out, label_names)
    text = names_text(names)
    image = image_with_geometry(out, geometry)
    image.SetMetaData(NOTE_KEY, names_note(text))
    write_image(image, target)
    json_path, txt_path = sidecar_paths(target)
    atomic_write_text(json_path, text)
    atomic_write_text(txt_path, itksnap_label_text(names))
    return target


def write_volume(volume: Volume, path: str | os.PathLike) -> Path:
    """Write an image volume (pixel type unchanged) with its geometry, atomically; never over its source."""
    target = Path(path)
    refuse_source_overwrite(target, [volume.meta.source])
    return write_image(image_with_geometry(volume.array, volume.geometry), target)


def label_table(labels: np.ndarray, label_names: Mapping[int, str] | Sequence[str] | None) -> dict[int, str]:
    """Names of background, of every label present and of every named label, by index (the reserved
    unknown label of scribble maps is named as such unless the caller names it)."""
    if label_names is None:
        given: dict[int, str] = {}
    elif isinstance(label_names, Mapping):
        given = {int(k): str(v) for k, v in label_names.items()}
    else:
        given = {i: str(v) for i, v in enumerate(label_names)}
    present = np.flatnonzero(np.bincount(labels.ravel())) if labels.dtype != np.uint32 else np.unique(labels)
    indices = sorted({0, *given, *(int(i) for i in present)})
    default = {0: "background", UNKNOWN_LABEL: UNKNOWN_NAME}
    return {i: given.get(i, default.get(i, f"class {i}")) for i in indices}


def label_colour(index: int) -> tuple[int, int, int]:
    """A stable colour per label: a fixed palette first, then golden-angle hues."""
    if index <= 0:
        return (0, 0, 0)
    if index <= len(_BASE_COLOURS):
        return _BASE_COLOURS[index - 1]
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.95)
    return (int(r * 255), int(g * 255), int(b * 255))


def itksnap_label_text(names: Mapping[int, str]) -> str:
    """ITK-SNAP label description: ``IDX R G B A VIS MESH "LABEL"`` per line, background invisible."""
    lines = [
        "# ITK-SNAP label description file written by GCL Studio",
        "# IDX  -R-  -G-  -B-  -A-  VIS MSH  LABEL",
    ]
    for index, name in sorted(names.items()):
        r, g, b = label_colour(index)
        visible = 0 if index == 0 else 1
        alpha = 0 if index == 0 else 1
        clean = name.replace('"', "'")
        lines.append(f"{index:5d} {r:4d} {g:4d} {b:4d} {alpha:4d} {visible:3d} {visible:3d}  \"{clean}\"")
    return "\n".join(lines) + "\n"
