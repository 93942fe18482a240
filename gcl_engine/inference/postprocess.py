"""Post-processing of predicted label volumes."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def keep_largest_component(labels: np.ndarray, classes: list[int] | None = None) -> np.ndarray:
    """Per foreground class, keep its largest 3D connected component (26-connectivity); the rest -> 0."""
    out = labels.copy()
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    for c in classes if classes is not None else [int(c) for c in np.unique(labels) if c != 0]:
        comp, n = ndimage.label(labels == c, structure=structure)
        if n <= 1:
            continue
        sizes = np.bincount(comp.ravel())
        sizes[0] = 0
        out[(comp != np.argmax(sizes)) & (labels == c)] = 0
    return out


def smallest_label_dtype(max_label: int) -> np.dtype:
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_label <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"label {max_label} does not fit 32 bits")
