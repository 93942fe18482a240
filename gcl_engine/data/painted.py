"""Which slices of a label map the user painted, and which of their voxels say something.

Two conventions, chosen by ``unknown_value``:

* ``None`` (whole slices, the default): a slice is painted when it holds any label > 0; every other voxel of a
  painted slice is background. A slice painted as background only cannot be told from an unpainted one, so it
  must be listed explicitly (``--slices``).
* a number V (scribbles): voxels equal to V are *unknown* and never reach a loss; every other voxel is a
  label (0 = background painted on purpose). A slice is painted when it holds any voxel other than V, so a
  slice painted as background only counts. GCL Studio writes scribbles with :data:`UNKNOWN_LABEL`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gcl_engine.errors import InputError
from gcl_engine.io.label_names import UNKNOWN_LABEL

__all__ = ["UNKNOWN_LABEL", "check_unknown_value", "class_values", "known_mask", "painted_slices"]


def painted_slices(stack: np.ndarray, unknown_value: int | None = None,
                   explicit: Sequence[int] | None = None, source: str | None = None) -> list[int]:
    """Sorted indices of the painted slices of an (n, H, W) stack (slicing axis first)."""
    n = stack.shape[0]
    if explicit is not None:
        bad = [int(s) for s in explicit if not 0 <= int(s) < n]
        if bad:
            raise InputError(source, f"slice indices {bad} outside 0..{n - 1}")
        return sorted({int(s) for s in explicit})
    flat = stack.reshape(n, -1)
    said = flat != unknown_value if unknown_value is not None else flat > 0
    return [int(k) for k in np.flatnonzero(said.any(axis=1))]


def known_mask(stack: np.ndarray, unknown_value: int | None) -> np.ndarray:
    """Boolean mask of the voxels whose label is known (all of them without an unknown value)."""
    if unknown_value is None:
        return np.ones(stack.shape, dtype=bool)
    return stack != unknown_value


def check_unknown_value(unknown_value: int | None, n_classes: int, source: str | None = None) -> None:
    """The unknown value must not be a class index (it would silently remove that class from training)."""
    if unknown_value is None:
        return
    if unknown_value < n_classes:
        raise InputError(source, f"the unknown value {unknown_value} is also class {unknown_value} of the "
                                 f"{n_classes} classes (background included): choose a value >= {n_classes}")


def class_values(stack: np.ndarray, unknown_value: int | None) -> np.ndarray:
    """The distinct labels present (the unknown value left out)."""
    values = np.unique(stack)
    return values[values != unknown_value] if unknown_value is not None else values
