"""A user's mask export: NIfTI (or NRRD/MHA) or DICOM SEG, with its audit line.

Saving annotations (the project's autosave) uses the writers directly; only what a user exports as a result
goes through here, so the audit log holds one line per export, not one per autosave.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from gcl_engine.audit import file_sha256, record_export
from gcl_engine.errors import InputError
from gcl_engine.io.volume import Geometry, Volume
from gcl_engine.io.writers import export_nifti

MaskFormat = Literal["nifti", "dicom-seg"]
MASK_FORMATS: tuple[str, ...] = ("nifti", "dicom-seg")


def export_mask(
    labels: np.ndarray,
    reference: Volume | Geometry,
    path: str | os.PathLike,
    label_names: Mapping[int, str] | Sequence[str] | None = None,
    mask_format: MaskFormat = "nifti",
    model: str | os.PathLike | None = None,
    colours: Mapping[int, Sequence[int]] | None = None,
    sources: Sequence[str | os.PathLike] = (),
) -> Path:
    """Write ``labels`` on the reference's grid in ``mask_format``; ``model`` is the file that predicted them.

    ``nifti`` follows the path's suffix (.nii.gz, .nii, .nrrd, .mha) and writes the name sidecars; ``dicom-seg``
    needs the :class:`Volume` read from the DICOM series (it references every source image).
    """
    if mask_format == "dicom-seg":
        from gcl_engine.io.dicom_seg import export_dicom_seg

        if not isinstance(reference, Volume):
            raise InputError(path, "a DICOM SEG needs the scan these labels belong to (its DICOM series); these "
                                   "labels only carry a geometry: export NIfTI, or paint on a scan opened from DICOM")
        written = export_dicom_seg(labels, reference, path, label_names, colours,
                                   model_sha256=file_sha256(model) if model else None)
    elif mask_format == "nifti":
        written = export_nifti(labels, reference, path, label_names, sources=sources)
    else:
        raise ValueError(f"unknown mask format {mask_format!r}; choose from {', '.join(MASK_FORMATS)}")
    inputs = [reference.meta.source] if isinstance(reference, Volume) else []
    record_export(mask_format, written, [*inputs, *sources], model)
    return written
