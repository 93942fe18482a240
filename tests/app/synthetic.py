"""Small synthetic scans with a deliberately awkward geometry (oblique, one axis flipped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

TINY = {"size": 32, "base_channels": 4, "levels": 3}


def oblique_direction(degrees: float = 17.0) -> tuple[float, ...]:
    """A rotation about an oblique axis, with one flipped axis: every matrix entry matters."""
    a = np.deg2rad(degrees)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(2 * a), -np.sin(2 * a), 0], [np.sin(2 * a), np.cos(2 * a), 0], [0, 0, 1]])
    flip = np.diag([-1.0, 1.0, 1.0])
    return tuple(float(v) for v in (rz @ rx @ flip).ravel())


def write_scan(path: Path, array: np.ndarray, spacing=(0.8, 0.9, 2.5), origin=(-12.5, 30.0, 7.25),
               direction: tuple[float, ...] | None = None) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction or oblique_direction())
    sitk.WriteImage(image, str(path))
    return path


def synthetic_ct(seed: int, shape=(12, 40, 44)) -> np.ndarray:
    """Air around a soft-tissue disc that moves with the slice: enough structure for a tiny model."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    array = rng.normal(-900, 20, shape)
    disc = (y - shape[1] / 2 - seed) ** 2 + (x - shape[2] / 2 + z - 6) ** 2 < 100
    array[disc] = rng.normal(40, 10, int(disc.sum()))
    return array.astype(np.int16)


def many_volumes(folder: Path, n: int, shape=(4, 16, 16)) -> Path:
    """``n`` tiny NIfTI volumes (noise), one subject each: a big folder in seconds."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        image = sitk.GetImageFromArray(rng.normal(0, 100, shape).astype(np.int16))
        image.SetSpacing((1.0, 1.0, 2.0))
        sitk.WriteImage(image, str(folder / f"sub-{i:04d}_T1w.nii.gz"))
    return folder
