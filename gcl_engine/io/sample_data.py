"""Where the bundled sample scans live, and the class names of their label maps.

The scans sit in ``resources/sample_data`` of the source tree, which is installed as the data-only package
``gcl_resources``: a wheel, an editable install and the bundle all find them through ``importlib.resources``.
Lookup order: ``$GCL_STUDIO_SAMPLE_DATA``, then the ``gcl_resources`` package, then
``<repo>/resources/sample_data`` beside this package (a checkout used without installing it).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from gcl_engine.errors import InputError
from gcl_engine.io.label_names import names_sidecar

SAMPLE_DATA_ENV = "GCL_STUDIO_SAMPLE_DATA"
RESOURCES_PACKAGE = "gcl_resources"

# scans/ holds only images (a folder to scan and pre-train on); labels/ the reference label maps
_FILES = {
    "scans": "scans",
    "ct": "scans/example_ct_sm.nii.gz",
    "ct_labels": "labels/example_seg.nii.gz",
    "mr": "scans/example_mr_sm.nii.gz",
    "mr_labels": "labels/example_seg_mr.nii.gz",
    "dicom_ct": "scans/ct_dicom",
    "dicom_ct_labels": "labels/example_seg_dicom.nii.gz",
    "oblique_dicom": "scans/oblique_brain_dicom",
    "cardiac_cine": "scans/cardiac_cine/MR-MONO2-8-16x-heart.dcm",
}
_LABELS = {"ct_labels", "mr_labels", "dicom_ct_labels"}


def sample_data_dir() -> Path:
    """The sample data folder; :class:`InputError` if neither place holds it."""
    override = os.environ.get(SAMPLE_DATA_ENV)
    candidates = [Path(override)] if override else []
    installed = _installed_resources()
    if installed is not None:
        candidates.append(installed / "sample_data")
    candidates.append(Path(__file__).resolve().parents[2] / "resources" / "sample_data")
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise InputError(candidates[0], f"sample data folder not found (set {SAMPLE_DATA_ENV})")


def _installed_resources() -> Path | None:
    try:
        folder = resources.files(RESOURCES_PACKAGE)
    except ModuleNotFoundError:
        return None
    path = Path(str(folder))  # a real folder: the package is installed unzipped (wheel, editable, bundle)
    return path if path.is_dir() else None


def sample_paths() -> dict[str, Path]:
    """Name -> path of each sample (a file, or a folder for DICOM series)."""
    root = sample_data_dir()
    return {name: root / rel for name, rel in _FILES.items()}


def class_names(name: str) -> dict[int, str]:
    """Index -> class name of a sample label map (``ct_labels``, ``mr_labels``, ``dicom_ct_labels``)."""
    if name not in _LABELS:
        raise KeyError(f"{name!r} is not a sample label map; choose from {sorted(_LABELS)}")
    path = sample_paths()[name]
    sidecar = names_sidecar(path)
    return {int(k): v for k, v in json.loads(sidecar.read_text(encoding="utf-8")).items()}
