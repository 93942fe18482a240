"""napari writer: a labels layer to NIfTI on the geometry of the scan it was painted on.

The geometry comes from ``layer.metadata`` (set by this plugin's reader and panels); a labels layer
made some other way falls back to its affine, so it still lands in the right place in patient space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gcl_app.layers import META_KEY, geometry_of, label_names_of

from gcl_engine import api


def _state_affine(attributes: dict[str, Any]) -> np.ndarray:
    """The data-to-world matrix from a layer's saved state (affine after scale/rotate/shear/translate)."""
    from napari.utils.transforms import Affine

    physical = Affine(scale=attributes.get("scale", (1, 1, 1)), translate=attributes.get("translate", (0, 0, 0)),
                      rotate=attributes.get("rotate"), shear=attributes.get("shear"))
    affine = np.asarray(attributes.get("affine", np.eye(4)))
    return affine @ np.asarray(physical.affine_matrix)


def write_labels(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """napari's single-layer writer hook; returns the written path."""
    metadata = attributes.get("metadata") or {}
    labels = np.asarray(data)
    if labels.ndim != 3:
        raise ValueError(f"GCL Studio writes 3D label volumes; this layer has {labels.ndim} dimensions")
    geometry = geometry_of(metadata, _state_affine(attributes))
    names = label_names_of(metadata) or None
    source = (metadata.get(META_KEY) or {}).get("source")
    api.ensure_logging()  # napari's File > Save can be the first thing the plugin does: its audit line needs a log
    written = api.export_mask(labels, geometry, path, names, sources=[source] if source else ())
    return [str(written)]
