"""Predict every volume under a folder (or of one file): the CLI's ``gcl predict`` and the panel's button.

The folder is walked by the scan's own walker, so every time point of a 4D file, every DICOM series and
every nested file the scan lists gets its mask, predicted on exactly that volume. Masks go to
``out/<the source's folder, relative to the input>/<volume id>_seg.nii.gz`` (two subjects' ``T1w.nii.gz``
in their own folders never overwrite each other); ``out`` naming a ``.nii``/``.nii.gz`` file asks for one
mask, which needs exactly one volume. One bad scan is reported and the others go on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gcl_engine.audit import record_export
from gcl_engine.config import PredictConfig
from gcl_engine.errors import Cancelled, InputError, OutputError
from gcl_engine.events import EventSink, Log, Progress, emit
from gcl_engine.inference.segmenter import Segmenter
from gcl_engine.io.folder_index import SkippedFile, discover
from gcl_engine.io.loading import count_volumes, load_volumes
from gcl_engine.io.volume import Volume, VolumeSource
from gcl_engine.io.writers import export_nifti
from gcl_engine.runtime import CancelToken, is_cancelled

MASK_SUFFIX = "_seg.nii.gz"
NIFTI_SUFFIXES = (".nii.gz", ".nii")


@dataclass(frozen=True)
class PredictedMask:
    volume_id: str
    source: str
    mask: str


@dataclass
class FolderPrediction:
    """What a folder's prediction wrote, what it skipped (and why), and whether it ran to the end."""

    folder: str
    out: str
    backend: str
    masks: list[PredictedMask] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    status: str = "completed"  # "completed" | "cancelled"


def safe_stem(text: str) -> str:
    """A file-name-safe volume id (ids never hold identifiers, but may hold odd characters)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._") or "volume"


def predict_folder(model: str | Path | Segmenter, folder: str | Path, out: str | Path,
                   on_event: EventSink | None = None, cancel: CancelToken | None = None,
                   config: PredictConfig | None = None) -> FolderPrediction:
    """Segment every volume of ``folder`` (a folder of scans, a DICOM folder or one file) into ``out``."""
    segmenter = model if isinstance(model, Segmenter) else Segmenter.load(model, config)
    model_file = None if isinstance(model, Segmenter) else str(model)  # for the audit line of each mask
    root, target = Path(folder), Path(out)
    single = target.name.lower().endswith(NIFTI_SUFFIXES)
    sources, skipped = discover(root, on_event, cancel, allow_file=True)
    result = FolderPrediction(str(root), str(target), segmenter.backend_name, skipped=list(skipped))
    if single and len(sources) > 1:
        raise InputError(root, f"holds {len(sources)} scans: give a folder as the output, not one file")
    _make_folder(target.parent if single else target)
    written: set[Path] = set()
    total, done = sum(count_volumes(s) for s in sources), 0
    for source in sources:
        try:
            volumes = load_volumes(source)
            if single and len(volumes) > 1:
                raise InputError(root, f"holds {len(volumes)} volumes (time points): give a folder as the output")
            for volume in volumes:
                if is_cancelled(cancel):
                    raise Cancelled("prediction cancelled")
                path = target if single else _mask_path(root, target, source, volume, written)
                _predict_one(segmenter, volume, path, cancel, model_file)
                result.masks.append(PredictedMask(volume.meta.volume_id, source.path, str(path)))
                done += 1
                emit(on_event, Progress("predict folder", done, total, f"wrote {path.name}"))
        except Cancelled:
            result.status = "cancelled"
            break
        except InputError as exc:
            if single:
                raise
            result.skipped.append(SkippedFile(source.path, exc.reason))
            emit(on_event, Log("warning", f"skipped {source.path}: {exc.reason}"))
            total -= count_volumes(source)
        if is_cancelled(cancel):
            result.status = "cancelled"
            break
    emit(on_event, Progress("predict folder", done, max(total, done), f"{done} mask(s) written"))
    return result


def _predict_one(segmenter: Segmenter, volume: Volume, path: Path, cancel: CancelToken | None,
                 model_file: str | None) -> None:
    prediction = segmenter.predict(volume, cancel=cancel)
    path.parent.mkdir(parents=True, exist_ok=True)
    export_nifti(prediction.labels, volume, path, prediction.class_names)
    record_export("nifti", path, [volume.meta.source], model_file)


def _mask_path(root: Path, out: Path, source: VolumeSource, volume: Volume, written: set[Path]) -> Path:
    """``out/<source folder relative to root>/<volume id>_seg.nii.gz``, never a name written before."""
    src = Path(source.path)
    base = root if root.is_dir() else root.parent
    try:
        relative = src.parent.relative_to(base)
    except ValueError:
        relative = Path()
    stem = safe_stem(volume.meta.volume_id)
    path, n = out / relative / f"{stem}{MASK_SUFFIX}", 1
    while path in written:
        n += 1
        path = out / relative / f"{stem}-{n}{MASK_SUFFIX}"
    written.add(path)
    return path


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
