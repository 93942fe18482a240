"""A scan as an array plus the geometry that places it in patient space, and where a scan comes from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Geometry:
    """ITK physical geometry; tuples are in ITK order (x, y, z), direction row-major 3x3."""

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 values, row-major

    def allclose(self, other: Geometry, tol: float = 1e-6) -> bool:
        return (
            np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    def to_dict(self) -> dict:
        return {"spacing": list(self.spacing), "origin": list(self.origin), "direction": list(self.direction)}

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        return cls(tuple(d["spacing"]), tuple(d["origin"]), tuple(d["direction"]))


@dataclass(frozen=True)
class VolumeSource:
    """One loadable source: a file, or a DICOM folder plus the files of one series (``kind`` 'dicom').

    A file can hold several volumes (a 4D NIfTI: one per time point); ``time_index`` picks one of them.
    """

    path: str
    kind: str  # 'nifti' | 'nrrd' | 'mha' | 'minc' | 'dicom' | 'nibabel' | 'other'
    files: tuple[str, ...] = ()


@dataclass
class VolumeMeta:
    """What the meta labels are built from. ``subject_hash`` is salted; raw identifiers never leave io."""

    source: str  # path of the file or DICOM folder it came from
    volume_id: str  # stable, identifier-free id (file stem, plus ``_t{n}`` for time points)
    modality: str = "unknown"  # "CT", "MR", ... or "unknown"
    series: str = ""  # series description / sequence name, may be ""
    subject_hash: str = ""
    time_index: int | None = None  # 4D index or cardiac phase
    n_time_points: int = 1
    extra: dict[str, str] = field(default_factory=dict)
    slice_phase: tuple[int, ...] | None = None  # phase per slice along axis 0 (multi-frame cine), else None
    notes: tuple[str, ...] = ()  # what reading changed and the user should know (NaN voxels replaced...)


@dataclass
class Volume:
    """``array`` is in SimpleITK order (k, j, i) = (z, y, x); slices along axis 0 are ITK index k."""

    array: np.ndarray
    geometry: Geometry
    meta: VolumeMeta

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)
