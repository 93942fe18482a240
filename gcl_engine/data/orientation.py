"""In-plane orientation: the network sees every slice with its axes along the same patient directions.

Scans store the same anatomy in different array orders: the small CT of the benchmark is stored mirrored in
i and j relative to a DICOM CT (direction -1,-1,1 against identity), so a model fine-tuned on one saw the
other upside down and mirrored (cross-volume Dice 0.06-0.09, benchmarks/README.md, few-shot). Before
resizing, each slice's two in-plane axes are transposed and flipped so that rows and columns run along
increasing patient coordinates (LPS, ITK's convention) of their dominant physical axis; predictions are
undone the same way, so masks always land on the stored voxel grid. The slicing axis is never changed: the
slices a user paints are the slices the model learns from. Only axis-aligned moves (no resampling), so an
oblique scan is brought to its nearest canonical layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

Stack = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class InPlaneOrientation:
    """How a (..., H, W) slice stack is turned into the canonical layout: transpose first, then flips."""

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    @property
    def is_identity(self) -> bool:
        return not (self.transpose or self.flip_rows or self.flip_cols)

    def oriented_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        return (shape[1], shape[0]) if self.transpose else (shape[0], shape[1])

    def apply(self, stack: Stack) -> Stack:
        """(..., H, W) stored layout -> canonical layout (a view for numpy arrays)."""
        out = _swap(stack) if self.transpose else stack
        return _flip(out, self.flip_rows, self.flip_cols)

    def undo(self, stack: Stack) -> Stack:
        """(..., H', W') canonical layout -> stored layout; the inverse of :meth:`apply`."""
        out = _flip(stack, self.flip_rows, self.flip_cols)
        return _swap(out) if self.transpose else out


def _swap(stack: Stack) -> Stack:
    return stack.transpose(-1, -2) if isinstance(stack, torch.Tensor) else np.swapaxes(stack, -1, -2)


def _flip(stack: Stack, rows: bool, cols: bool) -> Stack:
    dims = [d for d, on in ((-2, rows), (-1, cols)) if on]
    if not dims:
        return stack
    if isinstance(stack, torch.Tensor):
        return torch.flip(stack, dims)
    return np.flip(stack, axis=tuple(dims))


def in_plane_orientation(direction: tuple[float, ...] | None, axis: int) -> InPlaneOrientation:
    """The move to canonical layout of the slices cut along numpy ``axis`` of an array with this ITK direction.

    numpy axis a of the SimpleITK array is ITK index axis 2 - a, whose physical direction is column 2 - a of
    the row-major direction matrix. Rows come from the lower remaining numpy axis, columns from the higher.
    """
    if direction is None or len(direction) != 9:
        return InPlaneOrientation()
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    if not np.all(np.isfinite(d)):
        return InPlaneOrientation()
    row_axis, col_axis = (a for a in range(3) if a != axis)
    row_dir, col_dir = d[:, 2 - row_axis], d[:, 2 - col_axis]
    row_phys, col_phys = int(np.argmax(np.abs(row_dir))), int(np.argmax(np.abs(col_dir)))
    # rows follow the higher physical axis (axial: rows y, columns x; coronal and sagittal: rows z)
    transpose = row_phys < col_phys
    if transpose:
        row_dir, col_dir, row_phys, col_phys = col_dir, row_dir, col_phys, row_phys
    return InPlaneOrientation(transpose, bool(row_dir[row_phys] < 0), bool(col_dir[col_phys] < 0))
