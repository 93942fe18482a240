"""The labels layers tied to one image: annotations (painted), preview (predicted, read-only feel).

Each carries the image's geometry and identifier-free metadata plus the class names, so napari's
"Save layer" (this plugin's writer) and the project autosave write NIfTI on the source grid.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
from gcl_app.layers import META_KEY, NAMES_KEY, ROLE_KEY, UNCERTAINTY_ROLE, layer_affine
from napari.utils.colormaps import DirectLabelColormap

ANNOTATIONS = "annotations"
PREVIEW = "preview"
UNCERTAINTY = UNCERTAINTY_ROLE  # an image layer (not labels): the model's per-voxel entropy, 0 sure .. 1 uniform
PREVIEW_CONTOUR = 2  # pixels of outline a preview is drawn with


def same_layer(a: Any, b: Any) -> bool:
    """Identity of layers; napari hands plugins proxies, a new one per lookup, so ``is`` is not enough."""
    if a is None or b is None:
        return a is b
    return getattr(a, "__wrapped__", a) is getattr(b, "__wrapped__", b)


def volume_id_of(image: Any) -> str:
    return str((image.metadata.get(META_KEY) or {}).get("volume_id") or image.name)


def layer_name(image: Any, role: str) -> str:
    return f"{image.name} {role}"


def find_layer(viewer: Any, image: Any, role: str) -> Any | None:
    name = layer_name(image, role)
    return viewer.layers[name] if name in viewer.layers else None


def tied_metadata(image: Any, role: str, names: list[str]) -> dict[str, Any]:
    metadata = copy.deepcopy(dict(image.metadata))
    metadata[ROLE_KEY] = role
    metadata[NAMES_KEY] = dict(enumerate(names))
    return metadata


def ensure_layer(viewer: Any, image: Any, role: str, names: list[str], data: np.ndarray | None = None,
                 opacity: float = 0.7) -> Any:
    """The image's ``role`` labels layer, created on the image's grid and placement if missing."""
    layer = find_layer(viewer, image, role)
    if layer is not None:
        return layer
    if data is None:
        data = np.zeros(image.data.shape, dtype=np.uint8)
    layer = viewer.add_labels(data, name=layer_name(image, role), affine=layer_affine(image),
                              metadata=tied_metadata(image, role, names), opacity=opacity)
    if role == PREVIEW:
        layer.editable = False
        # an outline: never mistaken for the filled annotations under it (napari draws none in 3D: filled there)
        layer.contour = PREVIEW_CONTOUR if viewer.dims.ndisplay == 2 else 0
    return layer


def apply_classes(layer: Any, names: list[str], color_dict: Mapping[int | None, np.ndarray]) -> None:
    """Colours and names of the class list onto a labels layer."""
    layer.colormap = DirectLabelColormap(color_dict=dict(color_dict))
    metadata = dict(layer.metadata)
    metadata[NAMES_KEY] = dict(enumerate(names))
    layer.metadata = metadata


def set_slices(layer: Any, slices: list[int], masks: list[np.ndarray]) -> list[int]:
    """Write predicted slices into a preview layer; returns the slices written (shape-checked)."""
    written = []
    for k, mask in zip(slices, masks, strict=False):
        if 0 <= k < layer.data.shape[0] and tuple(mask.shape) == tuple(layer.data.shape[1:]):
            layer.data[k] = mask.astype(layer.data.dtype, copy=False)
            written.append(int(k))
    if written:
        layer.refresh()
    return written


def show_uncertainty(viewer: Any, image: Any, entropy: np.ndarray) -> Any:
    """The image's uncertainty layer, created on its grid and placement or refilled: bright where the model
    hesitates between classes, dark where it is sure (additive, so the scan stays readable under it)."""
    layer = find_layer(viewer, image, UNCERTAINTY)
    data = np.asarray(entropy, dtype=np.float32)
    if layer is not None and tuple(layer.data.shape) == data.shape:
        layer.data = data
        layer.visible = True
        return layer
    if layer is not None:
        viewer.layers.remove(layer)
    metadata = tied_metadata(image, UNCERTAINTY, [])
    active = viewer.layers.selection.active  # napari selects a new layer: the brush must stay where it was
    layer = viewer.add_image(data, name=layer_name(image, UNCERTAINTY), affine=layer_affine(image),
                             metadata=metadata, colormap="inferno", contrast_limits=(0.0, 1.0),
                             blending="additive", opacity=0.6)
    if active is not None:
        viewer.layers.selection.active = active
    return layer
