"""Read a DICOM SEG back with highdicom and place every stored pixel on a NIfTI grid, in patient space.

Independent of the writer: each frame's pixels are put where its own Plane Position and the shared Plane
Orientation and Pixel Measures say (DICOM: row r, column c at IPP + c*dc*row_dir + r*dr*col_dir), mapped to
the NIfTI's voxel indices through that file's geometry, and the segment number turned into a class index
through the segment label and the NIfTI's class names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gcl_engine import api


@dataclass
class SegOnGrid:
    labels: np.ndarray  # on the NIfTI grid, (k, j, i)
    worst_index_error: float  # largest distance of a SEG pixel centre from a NIfTI voxel centre, in voxels
    segments: dict[int, str]  # segment number -> label
    n_frames: int


def seg_on_grid(seg_path: Path, grid: api.Volume, names: dict[int, str]) -> SegOnGrid:
    import highdicom as hd

    seg = hd.seg.segread(str(seg_path))
    segments = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    class_of = {number: next(i for i, n in names.items() if n == label) for number, label in segments.items()}
    shared = seg.SharedFunctionalGroupsSequence[0]
    orientation = np.array([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
    row_dir, col_dir = orientation[:3], orientation[3:]
    spacing_rows, spacing_cols = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    g = grid.geometry
    to_index = np.linalg.inv(np.asarray(g.direction).reshape(3, 3) @ np.diag(g.spacing))
    out = np.zeros(grid.array.shape, dtype=np.int64)
    worst = 0.0
    pixels = seg.pixel_array if int(seg.NumberOfFrames) > 1 else seg.pixel_array[None]
    for frame, item in zip(pixels, seg.PerFrameFunctionalGroupsSequence, strict=True):
        origin = np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        identification = item if "SegmentIdentificationSequence" in item else shared  # shared when one segment
        number = int(identification.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        rows, cols = np.nonzero(frame)
        if rows.size == 0:
            continue
        points = origin + np.outer(cols * spacing_cols, row_dir) + np.outer(rows * spacing_rows, col_dir)
        index = (points - np.asarray(g.origin)) @ to_index.T  # (i, j, k) continuous
        nearest = np.rint(index).astype(int)
        worst = max(worst, float(np.abs(index - nearest).max()))
        inside = np.all((nearest >= 0) & (nearest < np.array(grid.array.shape[::-1])), axis=1)
        assert inside.all(), f"SEG pixels outside the NIfTI grid in frame of segment {number}"
        i, j, k = nearest.T
        assert not np.any(out[k, j, i]), "two segments claim one voxel"
        out[k, j, i] = class_of[number]
    return SegOnGrid(out, worst, segments, int(seg.NumberOfFrames))
