"""Fill the slices between painted slices by interpolating each class's shape (no network, milliseconds).

This is what clinicians use today instead of a model: 3D Slicer's "Fill between slices" (ITK's
MorphologicalContourInterpolator). Two methods:

* ``"sdf"`` (ours, the default): shape-based interpolation. Each class's mask on a painted slice becomes a
  signed distance map (negative inside, in mm), the maps of the two painted slices around a gap are blended
  linearly by distance, and each voxel takes the class whose blended map is most negative (background where
  none is). A class painted on one side of a gap only fades out at the middle of the gap. Unlike ITK's filter it
  knows which slices were painted: a class absent from a painted slice stays absent there.
* ``"mci"``: ITK's MorphologicalContourInterpolator itself (PyPI ``itk-morphologicalcontourinterpolation``,
  an optional package), run in a child process: about 8-12 s per call, most of it loading ITK.

Slices outside the painted range stay background: interpolation never extrapolates.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import ndimage

from gcl_engine.data.painted import known_mask, painted_slices
from gcl_engine.errors import ConfigError

InterpolationMethod = Literal["sdf", "mci"]
METHODS: tuple[str, ...] = ("sdf", "mci")


def in_plane_mm(spacing: Sequence[float], axis: int) -> tuple[float, float]:
    """(row, column) pixel size in mm of a slice cut along numpy ``axis`` of a volume of ITK ``spacing`` (x, y, z)."""
    rows_axis, cols_axis = (a for a in range(3) if a != axis)
    return float(spacing[2 - rows_axis]), float(spacing[2 - cols_axis])


def interpolate_volume(labels: np.ndarray, spacing: Sequence[float], axis: int = 0,
                       method: InterpolationMethod = "sdf", unknown_value: int | None = None,
                       slices: Sequence[int] | None = None) -> tuple[np.ndarray, list[int]]:
    """A label volume with the gaps between its painted slices (along numpy ``axis``) filled; and which slices
    were painted. ``spacing``: the volume's ITK (x, y, z) spacing, so distances are physical."""
    stack = np.moveaxis(np.asarray(labels), axis, 0)
    painted = painted_slices(stack, unknown_value, slices)
    filled = interpolate_between(stack, painted, method, unknown_value, in_plane_mm(spacing, axis))
    return np.moveaxis(filled, 0, axis), painted


def interpolate_between(stack: np.ndarray, painted: Sequence[int], method: InterpolationMethod = "sdf",
                        unknown_value: int | None = None,
                        pixel_mm: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """(n, H, W) label stack (slicing axis first) -> (n, H, W) with the gaps between painted slices filled.

    Painted slices keep their labels (unknown voxels become background); slices before the first and after
    the last painted slice are background. ``pixel_mm``: in-plane (row, column) spacing, so distances are
    physical on anisotropic pixels.
    """
    if method not in METHODS:
        raise ConfigError(f"interpolation method must be one of {METHODS}, got {method!r}")
    painted = sorted({int(k) for k in painted})
    dtype = np.uint8 if int(stack.max(initial=0)) < 256 else stack.dtype
    clean = np.where(known_mask(stack, unknown_value), stack, 0).astype(dtype, copy=False)
    out = np.zeros(stack.shape, dtype=dtype)
    if not painted:
        return out
    out[painted] = clean[painted]
    if len(painted) < 2:
        return out
    if method == "mci":
        return _mci(clean, painted, out)
    for a, b in zip(painted[:-1], painted[1:], strict=True):
        if b - a > 1:
            out[a + 1:b] = _fill_gap(clean[a], clean[b], b - a, pixel_mm)
    return out


def _fill_gap(first: np.ndarray, last: np.ndarray, gap: int, pixel_mm: tuple[float, float]) -> np.ndarray:
    """The gap - 1 slices strictly between two painted slices."""
    shape = first.shape
    best = np.full((gap - 1, *shape), np.inf, dtype=np.float32)
    label = np.zeros((gap - 1, *shape), dtype=first.dtype)
    t = (np.arange(1, gap, dtype=np.float32) / gap)[:, None, None]
    for c in np.union1d(np.unique(first), np.unique(last)):
        if c == 0:
            continue
        box = _box(first == c, last == c)
        a, b = _class_sdf(first[box] == c, pixel_mm), _class_sdf(last[box] == c, pixel_mm)
        if a is None:  # absent from the first slice: the shape fades out towards the gap's middle
            a = np.full_like(b, float(-b.min()))
        if b is None:
            b = np.full_like(a, float(-a.min()))
        blended = (1.0 - t) * a[None] + t * b[None]
        region = best[(slice(None), *box)]
        wins = (blended < 0) & (blended < region)
        region[wins] = blended[wins]
        label[(slice(None), *box)][wins] = c
    return label


def _box(a: np.ndarray, b: np.ndarray) -> tuple[slice, slice]:
    """Bounding box of the union of two masks, one pixel larger: blended shapes never leave the union."""
    rows, cols = np.nonzero(a | b)
    h, w = a.shape
    return (slice(max(0, rows.min() - 1), min(h, rows.max() + 2)),
            slice(max(0, cols.min() - 1), min(w, cols.max() + 2)))


def _class_sdf(mask: np.ndarray, pixel_mm: tuple[float, float]) -> np.ndarray | None:
    """Signed distance (mm) to the mask's boundary, negative inside; None for an empty mask."""
    if not mask.any():
        return None
    outside = ndimage.distance_transform_edt(~mask, sampling=pixel_mm)
    inside = ndimage.distance_transform_edt(mask, sampling=pixel_mm)
    return (outside - inside).astype(np.float32)


def _mci(clean: np.ndarray, painted: list[int], out: np.ndarray) -> np.ndarray:
    given = np.zeros_like(clean)
    given[painted] = clean[painted]
    filled = mci_in_child(given).astype(out.dtype, copy=False)
    lo, hi = painted[0], painted[-1]
    out[lo:hi + 1] = filled[lo:hi + 1]
    out[painted] = clean[painted]
    return out


def mci_in_child(given: np.ndarray, timeout_s: float = 600.0) -> np.ndarray:
    """ITK's filter in a child process: ITK's bundled libraries and torch's corrupted each other's heap at
    exit when both lived in one process (seen here twice), and a crash there must not take the caller down."""
    if importlib.util.find_spec("itk") is None:
        raise ConfigError("interpolation method 'mci' needs the package itk-morphologicalcontourinterpolation "
                          "(pip install itk-morphologicalcontourinterpolation)")
    with tempfile.TemporaryDirectory(prefix="gcl-mci-") as tmp:
        src, dst = Path(tmp) / "in.npy", Path(tmp) / "out.npy"
        # ITK wraps the filter for small integer pixel types only (int64 input crashed it): uint8 fits any class
        # list up to 255 (UNKNOWN_LABEL is never passed here), uint16 beyond
        wire = np.uint8 if int(given.max(initial=0)) <= 255 and int(given.min(initial=0)) >= 0 else np.uint16
        np.save(src, np.ascontiguousarray(given, dtype=wire))
        # the filter aborted now and then on a heap check (same input passing on a rerun: a race in its threads);
        # one ITK thread, and a retry when the child still dies of a signal
        env = {**os.environ, "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1"}
        for _attempt in range(3):
            done = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(dst)], capture_output=True,
                                  text=True, timeout=timeout_s, env=env)
            if done.returncode >= 0:
                break
        if done.returncode != 0 or not dst.is_file():
            last = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
            raise ConfigError(f"ITK's MorphologicalContourInterpolator failed (exit {done.returncode}): {last}")
        return np.load(dst).astype(given.dtype, copy=False)


_CHILD = """
import sys
import numpy as np
import itk
itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(1)
given = np.load(sys.argv[1])
mci = itk.MorphologicalContourInterpolator.New(itk.image_from_array(given))
mci.SetAxis(2)  # ITK's axis 2 is numpy axis 0, the slicing axis of the stack
mci.Update()
np.save(sys.argv[2], itk.array_from_image(mci.GetOutput()))
"""
