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


def write_dicom_series(folder: Path, image: np.ndarray, series_uid: str, series_number: int, prefix: str,
                       spacing=(0.9, 0.9, 3.0)) -> list[Path]:
    """An axial int16 series, one GDCM file per slice (UID, number and positions set; no identifiers)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for k, pixels in enumerate(image.astype(np.int16)):
        piece = sitk.GetImageFromArray(pixels)
        piece.SetSpacing(spacing[:2])
        tags = {"0008|0060": "CT", "0008|103e": f"series {series_number}", "0020|000d": series_uid + ".0",
                "0020|000e": series_uid, "0020|0011": str(series_number), "0020|0032": f"0\\0\\{k * spacing[2]}",
                "0020|0037": "1\\0\\0\\0\\1\\0", "0020|0013": str(k + 1), "0018|0050": str(spacing[2]),
                "0008|0016": "1.2.840.10008.5.1.4.1.1.2", "0008|0018": f"{series_uid}.{k + 1}"}
        for tag, value in tags.items():
            piece.SetMetaData(tag, value)
        paths.append(folder / f"{prefix}{k:03d}.dcm")
        writer.SetFileName(str(paths[-1]))
        writer.Execute(piece)
    return paths


def make_multi_volume_folder(root: Path) -> tuple[Path, dict[str, Path]]:
    """A folder whose files hold several volumes each, and each volume written alone elsewhere.

    ``root/scans``: ``cine_ct.nii.gz`` (4D, 3 time points that differ), ``dicom/`` (two interleaved series in
    one folder) and ``sub/case.nhdr`` (a nested NRRD with a detached header). Returns the folder and, per
    mask name the folder's prediction must write, the path of that volume alone (a 3D file or a folder of
    one series) so that a test can predict it by itself and compare.
    """
    scans, alone = root / "scans", root / "alone"
    scans.mkdir(parents=True)
    alone.mkdir()
    frames = [np.roll(phantom(t)[0], 6 * t, axis=2) for t in range(3)]
    series = sitk.JoinSeries([sitk.GetImageFromArray(f) for f in frames])
    series.SetSpacing((0.9, 0.9, 2.5, 1.0))
    sitk.WriteImage(series, str(scans / "cine_ct.nii.gz"))
    expected: dict[str, Path] = {}
    for t, frame in enumerate(frames):
        name = f"cine_ct_t{t}"
        expected[f"{name}_seg.nii.gz"] = write(frame, alone / f"{name}.nii.gz", spacing=(0.9, 0.9, 2.5),
                                               origin=(0.0, 0.0, 0.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
    for number, (seed, prefix) in {7: (3, "a"), 8: (4, "b")}.items():
        image = np.flip(phantom(seed)[0], axis=1) if number == 8 else phantom(seed)[0]
        uid = f"1.2.826.0.1.3680043.2.1125.12.{number}"
        write_dicom_series(scans / "dicom", image[:10], uid, number, prefix)
        expected[f"dicom_s{number}_seg.nii.gz"] = alone / f"series{number}"
        write_dicom_series(alone / f"series{number}", image[:10], uid, number, prefix)
    (scans / "sub").mkdir()
    nested = phantom(5, ct=False)[0]
    write(nested, scans / "sub" / "case.nhdr")
    expected["sub/case_seg.nii.gz"] = write(nested, alone / "case.nii.gz")
    return scans, expected
