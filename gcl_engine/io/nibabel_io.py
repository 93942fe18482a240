"""Scans SimpleITK cannot read (NIfTI-2, FreeSurfer MGH, MINC-1, PAR/REC, AFNI, ECAT), read with nibabel.

nibabel places voxels with a 4x4 affine to RAS+ millimetres; the engine keeps ITK's geometry (LPS,
spacing, origin, direction). The conversion is exact: LPS = diag(-1, -1, 1) RAS, the spacing is each
voxel axis' length and the direction the unit axes. A sheared grid (axes not perpendicular) has no ITK
geometry: it gets the nearest orthogonal one and a note that says so. Arrays come back in the engine's
(k, j, i) order, one per time point; nibabel applies the intensity scaling and keeps NaN as NaN.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from gcl_engine.errors import InputError
from gcl_engine.io import formats
from gcl_engine.io.header_checks import ImageInfo
from gcl_engine.io.volume import Geometry

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])
SHEAR_TOLERANCE = 1e-4


def open_image(path: Path, fmt: formats.ScanFormat | None = None):
    """nibabel's image object (pixels not read yet), or an InputError in plain words."""
    import nibabel as nib

    fmt = fmt or formats.format_of(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt is not None and fmt.name == "ECAT":
                return nib.ecat.load(str(path))
            return nib.load(str(path))
    except FileNotFoundError as exc:
        missing = Path(exc.filename).name if exc.filename else "its data file"
        raise InputError(path, f"its data file {missing} is missing") from None
    except Exception as exc:  # nibabel raises many types for damaged files (ImageFileError, ValueError...)
        raise InputError(path, f"cannot be read ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:120]


def _spatial_image(path: Path, fmt: formats.ScanFormat | None):
    image = open_image(path, fmt)
    if getattr(image, "affine", None) is None or not hasattr(image, "dataobj"):
        kind = type(image).__name__.replace("Image", "")
        raise InputError(path, f"{kind} data, not a scan on a voxel grid")
    return image


def _time_first(image) -> bool:
    """MINC stores the time axis first (slowest); every other format here puts it last."""
    import nibabel as nib

    return len(image.shape) > 3 and isinstance(image, nib.minc1.Minc1Image)  # Minc2Image derives from it


def _shape(image) -> tuple[int, ...]:
    """The image's shape with the time axis last and singleton axes past the third dropped."""
    shape = tuple(int(s) for s in image.shape)
    if _time_first(image):
        shape = shape[1:] + shape[:1]
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _data_dtype(image) -> np.dtype:
    try:
        return np.dtype(image.get_data_dtype())
    except TypeError:  # ECAT: per frame
        return np.dtype(image.get_data_dtype(0))


def read_info(path: Path, fmt: formats.ScanFormat | None = None) -> ImageInfo:
    """Header facts of a nibabel-read file, in the form SimpleITK's header checks take."""
    image = _spatial_image(path, fmt)
    try:
        dtype, shape = _data_dtype(image), _shape(image)
        zooms = tuple(float(z) for z in np.linalg.norm(np.asarray(image.affine)[:3, :3], axis=0))
    except Exception as exc:  # a header nibabel opened but cannot describe: a plain reason, never a traceback
        raise InputError(path, f"cannot be read ({_first_line(exc)})") from None
    components = len(dtype.names) if dtype.names else 1
    kind = "complex" if dtype.kind == "c" else ("float" if dtype.kind == "f" else "integer")
    return ImageInfo(str(path), len(shape), shape, zooms, f"{dtype.itemsize * 8}-bit {kind}", components,
                     dtype.itemsize if not dtype.names else dtype[0].itemsize, f"nibabel {type(image).__name__}")


def read_volumes(path: Path, fmt: formats.ScanFormat | None = None) -> tuple[list[np.ndarray], Geometry, list[str]]:
    """Every time point's (k, j, i) array, the shared geometry, and notes (a sheared grid)."""
    image = _spatial_image(path, fmt)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = np.asanyarray(image.dataobj)
    except Exception as exc:  # truncated data files, unsupported codings
        raise InputError(path, f"cannot read its pixel data ({_first_line(exc)})") from None
    if _time_first(image):
        data = np.moveaxis(data, 0, -1)
    data = data.reshape(_shape(image))
    if data.dtype == np.float64 and _data_dtype(image).itemsize <= 4:
        data = data.astype(np.float32)  # scaled small integers: float32 holds them, as SimpleITK would give
    data = data.astype(data.dtype.newbyteorder("="), copy=False)
    geometry, notes = geometry_from_affine(np.asarray(image.affine, dtype=float), path)
    frames = [data] if data.ndim == 3 else [data[..., t] for t in range(data.shape[3])]
    return [np.ascontiguousarray(f.transpose(2, 1, 0)) for f in frames], geometry, notes


def nifti_frames(path: Path) -> list[np.ndarray]:
    """A NIfTI-1's pixels by nibabel, scaled, NaN kept (SimpleITK's NIfTI reader turns NaN into 0)."""
    arrays, _geometry, _notes = read_volumes(path, formats.NIFTI)
    return arrays


def geometry_from_affine(affine: np.ndarray, path: Path | None = None) -> tuple[Geometry, list[str]]:
    """ITK geometry of a nibabel affine (RAS+), and a note when the grid had to be made orthogonal."""
    linear = LPS_FROM_RAS @ affine[:3, :3]
    origin = LPS_FROM_RAS @ affine[:3, 3]
    spacing = np.linalg.norm(linear, axis=0)
    notes: list[str] = []
    if np.any(spacing < 1e-12):
        name = path.name if path is not None else "the file"
        return Geometry((1.0, 1.0, 1.0), tuple(float(o) for o in origin), tuple(np.eye(3).ravel())), [
            f"{name}: the affine has a zero-length voxel axis; placed with 1 mm axis-aligned voxels"]
    direction = linear / spacing
    error = float(np.abs(direction.T @ direction - np.eye(3)).max())
    if error > SHEAR_TOLERANCE:
        u, _s, vt = np.linalg.svd(direction)
        direction = u @ vt
        name = path.name if path is not None else "the file"
        notes.append(f"{name}: its voxel axes are not perpendicular (sheared grid); placed on the nearest "
                     "orthogonal grid, so masks exported for it do not carry the shear")
    return Geometry(tuple(float(s) for s in spacing), tuple(float(o) for o in origin),
                    tuple(float(d) for d in direction.ravel())), notes


def affine_from_geometry(geometry: Geometry) -> np.ndarray:
    """The RAS+ 4x4 affine of an ITK geometry (the inverse of :func:`geometry_from_affine`)."""
    affine = np.eye(4)
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    affine[:3, :3] = LPS_FROM_RAS @ direction @ np.diag(geometry.spacing)
    affine[:3, 3] = LPS_FROM_RAS @ np.asarray(geometry.origin, dtype=float)
    return affine
