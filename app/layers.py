"""Convert engine volumes to napari layer data and back, keeping the patient-space geometry exact.

napari layers hold arrays in the engine's (k, j, i) order; the world is (z, y, x) in millimetres. The
4x4 affine below is ITK's index-to-physical transform with both sides reversed into that order, so
an oblique scan lands where the scanner put it and a labels layer painted on it can be written back
with the source geometry. The geometry and identifier-free metadata ride along in ``layer.metadata``
(under ``gcl_*`` keys) because napari's own affine cannot say which axis flips are the source's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gcl_engine import api

GEOMETRY_KEY = "gcl_geometry"
META_KEY = "gcl_meta"
NAMES_KEY = "gcl_label_names"
ROLE_KEY = "gcl_role"  # "image", "annotations", "preview", "prediction", "labels", "uncertainty"
UNCERTAINTY_ROLE = "uncertainty"  # an image layer derived from a scan: never offered as a scan itself
# VolumeMeta fields safe to keep on a layer (the engine already hashed the subject; no raw identifiers)
META_FIELDS = ("source", "volume_id", "modality", "series", "subject_hash", "time_index", "n_time_points",
               "extra", "slice_phase")
CT_WINDOW = api.PreprocessConfig().ct_window

LayerDataTuple = tuple[np.ndarray, dict[str, Any], str]


def affine_from_geometry(geometry: api.Geometry) -> np.ndarray:
    """napari's 4x4 data-to-world affine, (k, j, i) -> (z, y, x), from an ITK geometry.

    ITK: p_xyz = origin + D @ diag(spacing) @ (i, j, k). Reversing both vectors gives
    p_zyx = R origin + (R D R) diag(spacing reversed) (k, j, i), R the 3x3 reversal.
    """
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    linear = direction[::-1, ::-1] @ np.diag(np.asarray(geometry.spacing, dtype=float)[::-1])
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = np.asarray(geometry.origin, dtype=float)[::-1]
    return affine


def geometry_from_affine(affine: np.ndarray) -> api.Geometry:
    """Inverse of :func:`affine_from_geometry` (columns' norms are the spacing)."""
    affine = np.asarray(affine, dtype=float)
    linear = affine[:3, :3]
    spacing_kji = np.linalg.norm(linear, axis=0)
    direction_zyx = linear / spacing_kji
    direction = direction_zyx[::-1, ::-1]
    return api.Geometry(
        spacing=tuple(float(s) for s in spacing_kji[::-1]),
        origin=tuple(float(o) for o in affine[:3, 3][::-1]),
        direction=tuple(float(d) for d in direction.ravel()),
    )


def meta_dict(meta: api.VolumeMeta) -> dict[str, Any]:
    """The identifier-free subset of a VolumeMeta, JSON-friendly."""
    full = dataclasses.asdict(meta)
    return {k: full[k] for k in META_FIELDS if k in full}


def volume_metadata(volume: api.Volume, role: str, names: Mapping[int, str] | None = None) -> dict[str, Any]:
    """``layer.metadata`` for any layer on a volume's grid."""
    md: dict[str, Any] = {
        GEOMETRY_KEY: volume.geometry.to_dict(),
        META_KEY: meta_dict(volume.meta),
        ROLE_KEY: role,
    }
    if names is not None:
        md[NAMES_KEY] = {int(k): str(v) for k, v in names.items()}
    return md


def contrast_limits(volume: api.Volume) -> tuple[float, float]:
    """CT: the engine's soft-tissue window; otherwise robust percentiles (so MR is not washed out)."""
    if volume.meta.modality.upper() == "CT":
        return (float(CT_WINDOW[0]), float(CT_WINDOW[1]))
    sample = np.asarray(volume.array[:: max(1, volume.array.shape[0] // 16)], dtype=np.float32)
    low, high = np.percentile(sample, [0.5, 99.5])
    return (float(low), float(high if high > low else low + 1.0))


def image_layer_data(volume: api.Volume, name: str | None = None) -> LayerDataTuple:
    """A napari image layer tuple placed in patient space."""
    kwargs = {
        "name": name or volume.meta.volume_id,
        "affine": affine_from_geometry(volume.geometry),
        "metadata": volume_metadata(volume, "image"),
        "contrast_limits": contrast_limits(volume),
        "colormap": "gray",
    }
    return volume.array, kwargs, "image"


def labels_layer_data(labels: np.ndarray, volume: api.Volume, names: Mapping[int, str] | Sequence[str],
                      name: str, role: str = "labels") -> LayerDataTuple:
    """A napari labels layer tuple on ``volume``'s grid, with the class names in its metadata."""
    table = names if isinstance(names, Mapping) else dict(enumerate(names))
    kwargs = {
        "name": name,
        "affine": affine_from_geometry(volume.geometry),
        "metadata": volume_metadata(volume, role, table),
    }
    return np.asarray(labels), kwargs, "labels"


def geometry_of(metadata: Mapping[str, Any], affine: np.ndarray | None = None) -> api.Geometry:
    """The source geometry of a layer: its metadata when present, else decoded from its affine."""
    if GEOMETRY_KEY in metadata:
        return api.Geometry.from_dict(metadata[GEOMETRY_KEY])
    if affine is None:
        raise ValueError("the layer has no GCL geometry and no affine")
    return geometry_from_affine(affine)


def layer_affine(layer: Any) -> np.ndarray:
    """The 4x4 data-to-world matrix of a napari layer: its ``affine`` after scale/rotate/shear/translate."""
    from napari.utils.transforms import Affine

    physical = Affine(scale=layer.scale, translate=layer.translate, rotate=layer.rotate, shear=layer.shear)
    return np.asarray(layer.affine.affine_matrix) @ np.asarray(physical.affine_matrix)


def volume_of_layer(layer: Any) -> api.Volume:
    """An engine Volume view of an image layer (no copy), for prediction and export."""
    md = layer.metadata
    meta_fields = md.get(META_KEY) or {"source": "", "volume_id": layer.name}
    meta = api.VolumeMeta(**meta_fields)
    if isinstance(meta.slice_phase, list):
        meta.slice_phase = tuple(meta.slice_phase)
    return api.Volume(np.asarray(layer.data), geometry_of(md, layer_affine(layer)), meta)


def label_names_of(metadata: Mapping[str, Any]) -> dict[int, str]:
    """Class names stored on a layer (JSON round trips turn the keys into strings; undo that)."""
    return {int(k): str(v) for k, v in (metadata.get(NAMES_KEY) or {}).items()}
