"""DICOM SEG export (highdicom): a label map stored next to its source series, the way PACS keep segmentations.

Why highdicom: the SEG object (segment descriptions, coded concepts, per-frame functional groups, references to
every source instance, the shared frame of reference) is large and easy to get subtly wrong; highdicom builds and
checks it, is maintained by the Imaging Data Commons team and reads SEG back as a volume, which the tests use.

Each frame of the SEG is one slice of the label map, tied to the source image it was predicted on: frame ``k`` is
``labels[k]`` on ``series[k]``, the slices ordered along their normal exactly as the reader ordered them, and the
order is checked against the slice positions on disk. Segment ``n`` is the ``n``-th class present or named (class
indices need not be contiguous); its label, colour and, for common organ names, its SNOMED code come from the class
list. A SEG must carry the source's patient and study modules (that is how PACS files it beside the series), so
unlike every other export it holds the patient identifiers of its source: it is written only when asked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gcl_engine import __version__
from gcl_engine.errors import InputError, OutputError
from gcl_engine.io import dicom
from gcl_engine.io.atomic import atomic_write, os_error_to_output_error
from gcl_engine.io.formats import has_dicom_magic
from gcl_engine.io.volume import Volume
from gcl_engine.io.writers import label_colour, label_table, refuse_source_overwrite, smallest_label_array

DICOM_SEG_SUFFIX = ".dcm"
POSITION_TOLERANCE = 0.25  # of the slice step: how far a slice may sit from where the volume's geometry puts it
SEG_SERIES_NUMBER = 9901  # a series number viewers list after the scan's own series


def export_dicom_seg(
    labels: np.ndarray,
    reference: Volume,
    path: str | os.PathLike,
    label_names: Mapping[int, str] | Sequence[str] | None = None,
    colours: Mapping[int, Sequence[int]] | None = None,
    model_sha256: str | None = None,
) -> Path:
    """Write ``labels`` ((k, j, i), the reference's shape) as a DICOM SEG referencing the reference's series.

    ``colours``: RGB 0-255 per class index (default: the palette of the ``.label.txt`` sidecars).
    ``model_sha256``: the model that predicted the labels (segments are then AUTOMATIC, else MANUAL).
    Raises :class:`InputError` when the reference was not read from a DICOM series of single-frame slices.
    """
    import highdicom as hd

    target = Path(path)
    if not target.name.lower().endswith(DICOM_SEG_SUFFIX):
        raise OutputError(f"{target}: a DICOM SEG file name ends in {DICOM_SEG_SUFFIX}")
    arr = np.asarray(labels)
    if arr.shape != tuple(reference.array.shape):
        raise InputError(target, f"label shape {arr.shape} differs from the reference shape {reference.array.shape}")
    refuse_source_overwrite(target, [reference.meta.source])
    if not target.parent.is_dir():
        raise OutputError(f"cannot write {target}: the folder {target.parent} does not exist")
    datasets = source_datasets(reference)
    out = smallest_label_array(arr)
    names = {i: n for i, n in label_table(out, label_names).items() if i > 0}
    if not names:
        raise InputError(target, "no classes to export (a DICOM SEG needs at least one segment besides background)")
    segment_of = np.zeros(int(max(names)) + 1, dtype=np.uint16)
    for number, index in enumerate(sorted(names), start=1):
        segment_of[index] = number
    descriptions = [_segment(number, index, names[index], colours, model_sha256)
                    for number, index in enumerate(sorted(names), start=1)]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=segment_of[out],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="GCL Studio",
        manufacturer_model_name="GCL Studio",
        software_versions=__version__,
        device_serial_number="0",
        content_description="GCL Studio segmentation",
        series_description="GCL Studio segmentation",
        content_label="GCL_STUDIO",
        pixel_measures=_pixel_measures(datasets, reference),
        omit_empty_frames=bool(out.any()),  # an empty mask still gets its frames: a SEG needs at least one
    )
    with atomic_write(target) as tmp:
        try:
            seg.save_as(tmp)
        except OSError as exc:
            raise os_error_to_output_error(target, exc) or OutputError(f"cannot write {target}: {exc}") from None
    return target


def source_datasets(reference: Volume) -> list:
    """The headers (no pixel data) of the reference's source images, in the reference's slice order."""
    import pydicom

    source = Path(reference.meta.source)
    ordered = _matching_series(reference, source)
    first = ordered[0]
    if not first.series_uid:
        raise InputError(source, "the series has no Series Instance UID (removed by an anonymiser?): a DICOM SEG "
                                 "cannot reference it; export NIfTI instead")
    datasets = []
    for header in ordered:
        try:
            ds = pydicom.dcmread(header.path, stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise InputError(header.path, f"cannot read the DICOM header again ({exc})") from None
        for keyword in ("StudyInstanceUID", "FrameOfReferenceUID", "SOPInstanceUID"):
            if not str(getattr(ds, keyword, "") or ""):
                raise InputError(header.path, f"no {keyword}: a DICOM SEG cannot reference this image")
        datasets.append(ds)
    return datasets


def _matching_series(reference: Volume, source: Path) -> list[dicom.DicomHeader]:
    """The series on disk that the reference was read from: same slice count and slices where its geometry says."""
    if not source.is_dir():
        if source.is_file() and has_dicom_magic(str(source)):
            raise InputError(source, "a single multi-frame DICOM file (frames of one place, e.g. cine phases): "
                                     "DICOM SEG export needs a series of slices; export NIfTI instead")
        raise InputError(source, "not read from a DICOM series: DICOM SEG needs DICOM source images; "
                                 "export NIfTI instead")
    expected = _slice_positions(reference)
    step = float(np.min(reference.geometry.spacing)) if len(expected) < 2 else float(
        np.linalg.norm(expected[1] - expected[0]))
    for group in dicom.series_in_folder(source):
        if len(group) != len(expected) or group[0].n_frames > 1:
            continue
        positions = np.array([h.origin for h in group])
        if np.all(np.linalg.norm(positions - expected, axis=1) <= POSITION_TOLERANCE * step):
            return group
    raise InputError(source, f"no DICOM series in this folder has the scan's {len(expected)} slices where its "
                             "geometry puts them (the folder changed since the scan was read?)")


def _pixel_measures(datasets: list, reference: Volume):
    """The source's pixel spacing and thickness, and the slice step measured from the positions: some scanners
    write the gap between slices into Spacing Between Slices, which would contradict the frame positions."""
    import highdicom as hd

    first = datasets[0]
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
    step = float(np.mean(np.linalg.norm(np.diff(positions, axis=0), axis=1))) if len(datasets) > 1 else None
    thickness = float(first.SliceThickness) if getattr(first, "SliceThickness", None) else (
        step or float(reference.geometry.spacing[2]))
    return hd.PixelMeasuresSequence(pixel_spacing=[float(v) for v in first.PixelSpacing], slice_thickness=thickness,
                                    spacing_between_slices=step)


def _slice_positions(reference: Volume) -> np.ndarray:
    """Patient position (LPS, mm) of pixel (0, 0) of every slice k of the reference."""
    g = reference.geometry
    direction = np.asarray(g.direction, dtype=float).reshape(3, 3)
    k = np.arange(reference.array.shape[0], dtype=float)
    return np.asarray(g.origin, dtype=float) + np.outer(k * g.spacing[2], direction[:, 2])


def _segment(number: int, index: int, name: str, colours: Mapping[int, Sequence[int]] | None,
             model_sha256: str | None):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    rgb = tuple(int(c) for c in (colours or {}).get(index, label_colour(index)))[:3]
    anatomy = _snomed_anatomy(name)
    automatic = model_sha256 is not None
    algorithm = hd.AlgorithmIdentificationSequence(
        name="GCL Studio", family=codes.cid7162.ArtificialIntelligence, version=__version__,
        parameters={"model_sha256": model_sha256}) if automatic else None
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=name[:64],
        segmented_property_category=codes.SCT.AnatomicalStructure if anatomy else codes.SCT.Tissue,
        segmented_property_type=anatomy or codes.SCT.Tissue,
        algorithm_type=(hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if automatic
                        else hd.seg.SegmentAlgorithmTypeValues.MANUAL),
        algorithm_identification=algorithm,
        tracking_id=f"class {index}",
        tracking_uid=hd.UID(),
        display_color=hd.color.CIELabColor.from_rgb(*rgb),
    )


def _snomed_anatomy(name: str):
    """The SNOMED code of a class named like a region of DICOM's CID 4 (Anatomic Region: ``liver``, ``Inferior
    vena cava``...), from pydicom's tables; ``None`` for anything else (the label then says what it is)."""
    from pydicom.sr.codedict import codes

    keyword = "".join(word.capitalize() for word in re.split(r"[^A-Za-z0-9]+", name) if word)
    try:
        return getattr(codes.cid4, keyword) if keyword else None
    except AttributeError:
        return None
