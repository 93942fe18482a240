"""How a stored slice becomes the network's size x size input, and how its outputs go back.

Two moves, both undone on the way back so masks always land on the stored voxel grid:
1. the in-plane orientation (``orientation.py``): axes along the patient directions;
2. the scale: by default the whole slice is resized to ``size`` (every field of view fills the input); with
   ``PreprocessConfig.field_of_view_mm`` the slice is resampled at ``field_of_view_mm / size`` mm per pixel
   and centred on a ``size`` canvas, so an organ has the same size in pixels in every scan. A field of view
   smaller than the scan's crops its edges (predicted as background there); a larger one pads with the
   volume's lowest intensity (air for CT).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gcl_engine.data.label_resample import upsampled_argmax
from gcl_engine.data.orientation import InPlaneOrientation


@dataclass(frozen=True)
class Canvas:
    """A slice of ``scaled`` pixels (at the canvas spacing) placed with its top-left corner at ``offset``."""

    scaled: tuple[int, int]
    offset: tuple[int, int]
    size: int

    def _spans(self, axis: int) -> tuple[slice, slice]:
        """(source span in the scaled slice, destination span on the canvas) along rows (0) or columns (1)."""
        n, off = self.scaled[axis], self.offset[axis]
        lo, hi = max(0, -off), min(n, self.size - off)
        return slice(lo, hi), slice(lo + off, hi + off)

    def place(self, scaled: torch.Tensor, fill: float) -> torch.Tensor:
        """(n, C, h', w') -> (n, C, size, size), cropped or padded with ``fill``."""
        out = torch.full((*scaled.shape[:2], self.size, self.size), fill, dtype=scaled.dtype)
        (sr, dr), (sc, dc) = self._spans(0), self._spans(1)
        out[:, :, dr, dc] = scaled[:, :, sr, sc]
        return out

    def take(self, maps: torch.Tensor) -> torch.Tensor:
        """(n, K, size, size) probabilities -> (n, K, h', w'); what the canvas cropped away is background."""
        out = torch.zeros((*maps.shape[:2], *self.scaled), dtype=maps.dtype)
        out[:, 0] = 1.0
        (sr, dr), (sc, dc) = self._spans(0), self._spans(1)
        out[:, :, sr, sc] = maps[:, :, dr, dc]
        return out


@dataclass(frozen=True)
class SliceLayout:
    orientation: InPlaneOrientation
    stored_shape: tuple[int, int]  # (H, W) of a slice as stored
    size: int
    canvas: Canvas | None = None  # None: the whole slice is resized to size x size

    @property
    def oriented_shape(self) -> tuple[int, int]:
        return self.orientation.oriented_shape(self.stored_shape)

    def to_network(self, stack: np.ndarray, nearest: bool = False, fill: float = 0.0,
                   max_values: int = 2 ** 23, transform: Callable[[np.ndarray], np.ndarray] | None = None
                   ) -> torch.Tensor:
        """(n, H, W) stored slices -> (n, size, size) float tensor.

        Slices are resampled in groups of at most ``max_values`` intermediate values: a field of view much
        smaller than the scan resamples each slice to many pixels before the canvas crops it. ``transform``
        (intensity normalisation) is applied to each group first.
        """
        target = self.canvas.scaled if self.canvas is not None else (self.size, self.size)
        per_slice = max(1, target[0] * target[1], stack.shape[-2] * stack.shape[-1])
        step = max(1, max_values // per_slice)
        transform = transform or (lambda part: part)
        outs = [self._to_network(transform(stack[i:i + step]), target, nearest, fill)
                for i in range(0, len(stack), step)]
        return torch.cat(outs) if outs else torch.zeros((0, self.size, self.size))

    def _to_network(self, stack: np.ndarray, target: tuple[int, int], nearest: bool, fill: float) -> torch.Tensor:
        oriented = np.ascontiguousarray(self.orientation.apply(stack))
        t = torch.as_tensor(oriented).float().unsqueeze(1)
        if nearest:
            out = F.interpolate(t, size=target, mode="nearest-exact")
        else:
            out = F.interpolate(t, size=target, mode="bilinear", align_corners=False, antialias=True)
        if self.canvas is not None:
            out = self.canvas.place(out, fill)
        return out.squeeze(1)

    def to_source(self, maps: torch.Tensor) -> torch.Tensor:
        """(n, K, size, size) probabilities -> (n, K, H, W) on the stored grid."""
        maps = maps.float()
        if self.canvas is not None:
            maps = self.canvas.take(maps)
        back = F.interpolate(maps, size=self.oriented_shape, mode="bilinear", align_corners=False)
        return self.orientation.undo(back)

    def to_source_labels(self, maps: torch.Tensor, dtype=np.int64, logits: bool = False) -> np.ndarray:
        """(n, K, size, size) probabilities (or ``logits``) -> (n, H, W) labels on the stored grid:
        ``to_source(maps).argmax(1)`` without building the full-size maps (data/label_resample.py)."""
        maps = maps.float()
        if self.canvas is not None:  # the canvas fills what it cropped with background probabilities
            maps = self.canvas.take(torch.softmax(maps, 1) if logits else maps)
            logits = False
        small = maps.numpy()
        out = np.empty((small.shape[0], *self.oriented_shape), dtype)
        for j in range(small.shape[0]):
            out[j] = upsampled_argmax(small[j], self.oriented_shape, dtype, logits)
        return np.ascontiguousarray(self.orientation.undo(out))


def make_layout(orientation: InPlaneOrientation, stored_shape: tuple[int, int], size: int,
                stored_spacing: tuple[float, float] | None, field_of_view_mm: float | None) -> SliceLayout:
    """The layout of one volume's slices; ``stored_spacing`` is (row, column) mm of a stored slice."""
    if not field_of_view_mm or stored_spacing is None:
        return SliceLayout(orientation, stored_shape, size)
    rows, cols = orientation.oriented_shape(stored_shape)
    row_mm, col_mm = (stored_spacing[1], stored_spacing[0]) if orientation.transpose else stored_spacing
    pixel_mm = field_of_view_mm / size
    scaled = (max(1, round(rows * row_mm / pixel_mm)), max(1, round(cols * col_mm / pixel_mm)))
    offset = ((size - scaled[0]) // 2, (size - scaled[1]) // 2)
    return SliceLayout(orientation, stored_shape, size, Canvas(scaled, offset, size))
