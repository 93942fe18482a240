"""Small generated volumes with non-trivial geometry, shared by the engine's pipeline tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from gcl_engine.config import ModelConfig, PreprocessConfig

TINY_PRE = PreprocessConfig(size=32)
TINY_MODEL = ModelConfig(base_channels=4, levels=3, groups=2)


def phantom(seed: int, shape=(16, 40, 40), ct: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A body with a 'liver' blob and a small 'vessel' tube; returns (image, labels)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[0:shape[0], 0:shape[1], 0:shape[2]].astype(np.float32)
    cy, cx = shape[1] / 2 + rng.uniform(-2, 2), shape[2] / 2 + rng.uniform(-2, 2)
    body = ((y - cy) / (shape[1] * 0.42)) ** 2 + ((x - cx) / (shape[2] * 0.45)) ** 2 < 1
    liver = ((y - cy + 4) / 7) ** 2 + ((x - cx - 5) / (6 + z / shape[0] * 3)) ** 2 < 1
    vessel = (y - cy - 5) ** 2 + (x - cx + 6) ** 2 < 4
    labels = np.zeros(shape, np.uint8)
    labels[liver & body] = 1
    labels[vessel & body] = 2
    if ct:
        image = np.where(body, 40.0, -1000.0) + 60.0 * (labels == 1) + 200.0 * (labels == 2)
        image = image + rng.normal(0, 15, shape)
        return image.astype(np.int16), labels
    image = np.where(body, 300.0, 5.0) + 200.0 * (labels == 1) + 500.0 * (labels == 2) + rng.normal(0, 20, shape)
    return image.astype(np.float32), labels


def write(array: np.ndarray, path: Path, spacing=(1.2, 0.9, 2.5), origin=(-30.0, 12.5, 40.0),
          direction=(0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    sitk.WriteImage(image, str(path))
    return path


def make_folder(root: Path, n: int = 3, with_labels: bool = True) -> tuple[Path, list[Path], list[Path]]:
    """``root/scans`` with n CT-like volumes (labels kept outside in ``root/labels``)."""
    scans, labels_dir = root / "scans", root / "labels"
    scans.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(exist_ok=True)
    images, labels = [], []
    for i in range(n):
        img, lab = phantom(i, ct=i % 3 != 2)
        images.append(write(img, scans / f"case{i:02d}_{'ct' if i % 3 != 2 else 'mr'}.nii.gz"))
        if with_labels:
            labels.append(write(lab, labels_dir / f"case{i:02d}_seg.nii.gz"))
    return scans, images, labels
