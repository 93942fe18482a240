"""Class names beside a label map, and the proof that they belong to it.

A label map and its ``<name>.labels.json`` are two files, written one after the other: a save that stops
between the two (a crash, a killed autosave, a full disk) would leave the new classes under the old names,
which a user cannot see and a clinician must never get. So the label map carries, in its own header
(``ITK_FileNotes``: NIfTI's ``descrip``, a NRRD/MHA field), a digest of the names file written with it;
names whose digest differs are not used, and the reason says which files disagree. Label maps from other
tools (no digest) keep their sidecar as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import SimpleITK as sitk

NOTE_KEY = "ITK_FileNotes"
NOTE_PREFIX = "gcl-label-names sha256:"
LABEL_MAP_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")  # what export_nifti writes
# The reserved label of scribble maps: "not painted, unknown" (uint8 maps keep 254 classes besides background).
# Written and read like any label; its name in the sidecar says what it is.
UNKNOWN_LABEL = 255
UNKNOWN_NAME = "unknown (not painted)"


def names_text(names: Mapping[int, str]) -> str:
    """The ``.labels.json`` text: ``{"index": "name"}``, indices ascending."""
    return json.dumps({str(k): v for k, v in sorted(names.items())}, indent=2, ensure_ascii=False) + "\n"


def names_note(text: str) -> str:
    """What the label map's header carries for the names file ``text`` (64 bits of its SHA-256)."""
    return NOTE_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def names_sidecar(label_path: str | os.PathLike) -> Path | None:
    """``<name>.labels.json`` beside a label map of a supported format (None for other files)."""
    path = Path(label_path)
    for suffix in LABEL_MAP_SUFFIXES:
        if path.name.lower().endswith(suffix):
            return path.with_name(path.name[: -len(suffix)] + ".labels.json")
    return None


@dataclass(frozen=True)
class LabelNames:
    """Class names found for a label map. ``found``: a names file exists (the file is a label map);
    ``problem``: why its names were not used (then ``names`` is empty)."""

    names: dict[int, str] = field(default_factory=dict)
    found: bool = False
    problem: str = ""


def _header_note(path: Path) -> str:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return ""
    return reader.GetMetaData(NOTE_KEY) if reader.HasMetaDataKey(NOTE_KEY) else ""


def read_label_names(label_path: str | os.PathLike) -> LabelNames:
    """The class names of a label map from its ``.labels.json``, checked against the map's header."""
    path = Path(label_path)
    sidecar = names_sidecar(path)
    if sidecar is None or not sidecar.is_file():
        return LabelNames()
    try:
        text = sidecar.read_text(encoding="utf-8")
        names = {int(k): str(v) for k, v in json.loads(text).items()}
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        return LabelNames(found=True, problem=f"{sidecar}: unreadable class names ({type(exc).__name__}); "
                                              "the classes are shown by number")
    note = _header_note(path)
    if note.startswith(NOTE_PREFIX) and note != names_note(text):
        return LabelNames(found=True, problem=(
            f"{sidecar.name} does not belong to this version of {path.name} (a save was interrupted, or one "
            f"file was replaced): its class names are not used; the classes are shown by number"))
    return LabelNames(names, found=True)
