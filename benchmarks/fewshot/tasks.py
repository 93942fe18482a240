"""The labelled volumes of the few-shot benchmark, their reference maps on the image grid, compact class lists.

Reference maps come from ``bench-data/labels/`` (fetched by ``benchmarks/fetch_data.sh``), the class names of
the TotalSegmentator maps from ``resources/sample_data/labels/*.labels.json``. Every map is returned on the
voxel grid of the image it belongs to (same array shape and axis order as ``load_volume(image).array``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from gcl_engine import api

REPO = Path(__file__).resolve().parents[2]
BENCH_DATA = Path(os.environ.get("GCL_BENCH_DATA", Path.home() / ".cache/gcl-studio/bench-data"))
SIDECARS = REPO / "resources" / "sample_data" / "labels"

# The compact class list of the abdominal maps (CT and MR share it, so a CT model's outputs are MR classes).
# Left/right adrenal glands and every vertebra are merged: one voxel-level class each.
COMPACT = ("liver", "spleen", "kidney_right", "kidney_left", "stomach", "gallbladder", "pancreas",
           "adrenal_glands", "aorta", "inferior_vena_cava", "portal_splenic_vein", "vertebrae")
# The "harder targets": everything but the three large organs
SMALL = ("kidney_right", "kidney_left", "gallbladder", "pancreas", "adrenal_glands", "aorta",
         "inferior_vena_cava", "portal_splenic_vein", "vertebrae")


@dataclass(frozen=True)
class Task:
    name: str
    image: Path  # file or DICOM folder, what FinetuneConfig.image takes
    labels: np.ndarray  # int64, same shape as the image's array
    class_names: tuple[str, ...]  # index 0 = background
    small: tuple[str, ...]  # the subset averaged as "small organs" ("" if not applicable)
    description: str

    @property
    def n_slices(self) -> int:
        return int(self.labels.shape[0])


def compact_name(name: str) -> str | None:
    if name.startswith("adrenal_gland"):
        return "adrenal_glands"
    if name == "portal_vein_and_splenic_vein":
        return "portal_splenic_vein"
    if name == "vertebrae" or name.startswith("vertebrae_"):
        return "vertebrae"
    return name if name in COMPACT else None


def _remap_totalseg(array: np.ndarray, sidecar: str) -> np.ndarray:
    names = {int(k): v for k, v in json.loads((SIDECARS / sidecar).read_text(encoding="utf-8")).items()}
    lut = np.zeros(max(int(array.max()), max(names)) + 1, np.int64)
    for index, name in names.items():
        new = compact_name(name)
        if new is not None:
            lut[index] = COMPACT.index(new) + 1
    return lut[array.astype(np.int64)]


def _read_on_grid(label_path: Path, image: api.Volume) -> np.ndarray:
    """The label map as an array on the image's voxel grid; resampled in physical space when grids differ."""
    lab = sitk.ReadImage(str(label_path))
    g = image.geometry
    same = (tuple(reversed(lab.GetSize())) == image.array.shape
            and np.allclose(lab.GetSpacing(), g.spacing, atol=1e-3)
            and np.allclose(lab.GetOrigin(), g.origin, atol=1e-2)
            and np.allclose(lab.GetDirection(), g.direction, atol=1e-4))
    if same:
        return sitk.GetArrayFromImage(lab).astype(np.int64)
    ref = sitk.Image([int(s) for s in reversed(image.array.shape)], sitk.sitkUInt8)
    ref.SetSpacing(g.spacing)
    ref.SetOrigin(g.origin)
    ref.SetDirection(g.direction)
    out = sitk.Resample(lab, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, lab.GetPixelID())
    return sitk.GetArrayFromImage(out).astype(np.int64)


def _totalseg(name: str, image_rel: str, label_rel: str, sidecar: str, description: str) -> Task:
    image = BENCH_DATA / "volumes" / "totalseg" / image_rel
    vol = api.load_volume(image)
    labels = _remap_totalseg(_read_on_grid(BENCH_DATA / "labels" / "totalseg" / label_rel, vol), sidecar)
    return Task(name, image, labels, ("background", *COMPACT), SMALL, description)


def _dicom_ct() -> Task:
    task = _totalseg("dicom_ct", "example_ct_dicom", "example_seg_dicom.nii.gz", "example_seg_dicom.labels.json",
                     "Siemens CT DICOM 512x512x20, 0.98 mm; map stored LAS, resampled onto the LPS DICOM grid")
    # orientation check: on these two grids (same voxels, j flipped) physical resampling must equal a j-flip
    raw = sitk.GetArrayFromImage(sitk.ReadImage(str(BENCH_DATA / "labels/totalseg/example_seg_dicom.nii.gz")))
    flipped = _remap_totalseg(np.ascontiguousarray(raw[:, ::-1, :]), "example_seg_dicom.labels.json")
    agree = float((flipped == task.labels).mean())
    if agree < 0.999:
        raise RuntimeError(f"DICOM label resampling disagrees with the expected j-flip ({agree:.4f} of voxels)")
    return task


def _to_sitk(array: np.ndarray, geometry) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(geometry.spacing)
    img.SetOrigin(geometry.origin)
    img.SetDirection(geometry.direction)
    return img


def _dicom_ct_as_ct_sm() -> Task:
    """The DICOM CT resampled in physical space onto a grid like the small CT's: its direction (-1,-1,1), 3 mm
    in-plane, its in-plane size (122 x 101), centred on the DICOM's centre, the DICOM's 20 slices.

    The engine slices the stored array as it is and resizes every slice to size x size: the small CT is stored
    mirrored in i and j relative to the DICOM (direction -1,-1,1 vs identity) and covers 366 x 303 mm, not 500 x
    500. This target shows what the cross-volume row would score if the engine reoriented and normalised the
    spacing (written once into the run folder's derived/ as NIfTI).
    """
    out_dir = Path(os.environ.get("FEWSHOT_DERIVED", Path.home() / ".cache/gcl-studio/fewshot-runs/derived"))
    image_path, label_path = out_dir / "dicom_ct_as_ct_sm.nii.gz", out_dir / "dicom_ct_as_ct_sm_labels.nii.gz"
    if not (image_path.exists() and label_path.exists()):
        src = load_task("dicom_ct")
        vol = load_image("dicom_ct")
        ct_sm = api.load_volume(BENCH_DATA / "volumes/totalseg/example_ct_sm.nii.gz")
        g = vol.geometry
        size = [122, 101, vol.array.shape[0]]
        spacing = [3.0, 3.0, g.spacing[2]]
        direction = np.array(ct_sm.geometry.direction).reshape(3, 3)
        d_src = np.array(g.direction).reshape(3, 3)
        centre = np.array(g.origin) + d_src @ (np.array(g.spacing) * (np.array(vol.array.shape[::-1]) - 1) / 2)
        origin = centre - direction @ (np.array(spacing) * (np.array(size) - 1) / 2)
        ref = sitk.Image(size, sitk.sitkFloat32)
        ref.SetSpacing(spacing)
        ref.SetOrigin(tuple(origin))
        ref.SetDirection(tuple(direction.reshape(-1)))
        img = sitk.Resample(_to_sitk(vol.array.astype(np.float32), g), ref, sitk.Transform(), sitk.sitkLinear, -1024.0)
        lab = sitk.Resample(_to_sitk(src.labels.astype(np.uint8), g), ref, sitk.Transform(),
                            sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        out_dir.mkdir(parents=True, exist_ok=True)
        for im, path in ((sitk.Cast(sitk.Round(img), sitk.sitkInt16), image_path), (lab, label_path)):
            tmp = path.with_name(f".{os.getpid()}.{path.name}")
            sitk.WriteImage(im, str(tmp))
            os.replace(tmp, path)
    vol = api.load_volume(image_path)
    labels = _read_on_grid(label_path, vol)
    return Task("dicom_ct_as_ct_sm", image_path, labels, ("background", *COMPACT), SMALL,
                "the DICOM CT resampled onto a small-CT-like grid (direction, 3 mm, extent): "
                "what reorientation + spacing normalisation in the engine would give")


def _itk_kmeans() -> Task:
    image = BENCH_DATA / "volumes/itk_kmeans/KmeansTest_T1UCharRaw.nii.gz"
    vol = api.load_volume(image)
    labels = _read_on_grid(BENCH_DATA / "labels/itk_kmeans/KmeansTest_T1KmeansPrelimSegmentation.nii.gz", vol)
    names = ("background", *[f"kmeans_{i}" for i in range(1, int(labels.max()) + 1)])
    return Task("itk_kmeans", image, labels, names, (), "ITK T1 head 128x128x62, 7-class k-means map (easy)")


def _icbm() -> Task:
    image = BENCH_DATA / "volumes/nilearn_icbm/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    vol = api.load_volume(image)
    folder = BENCH_DATA / "labels/nilearn_icbm"
    gm = _read_on_grid(folder / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz", vol)
    wm = _read_on_grid(folder / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz", vol)
    half = 128 if max(gm.max(), wm.max()) > 1 else 0.5  # stored as uint8 0..255 probabilities
    labels = np.zeros(gm.shape, np.int64)
    labels[(gm >= half) & (gm >= wm)] = 1
    labels[(wm >= half) & (wm > gm)] = 2
    return Task("icbm", image, labels, ("background", "grey_matter", "white_matter"), (),
                "ICBM152 T1 template 197x233x189, grey/white maps thresholded at 0.5 (easy)")


BUILDERS = {
    "mr_sm": lambda: _totalseg("mr_sm", "example_mr_sm.nii.gz", "example_seg_mr.nii.gz", "example_seg_mr.labels.json",
                               "TotalSegmentator MR 117x91x20, 3 mm, model-made map, 12 compact classes"),
    "ct_sm": lambda: _totalseg("ct_sm", "example_ct_sm.nii.gz", "example_seg.nii.gz", "example_seg.labels.json",
                               "TotalSegmentator CT 122x101x30, 3 mm, model-made map, 12 compact classes"),
    "dicom_ct": _dicom_ct,
    "dicom_ct_as_ct_sm": _dicom_ct_as_ct_sm,
    "itk_kmeans": _itk_kmeans,
    "icbm": _icbm,
}


@cache
def load_task(name: str) -> Task:
    if name not in BUILDERS:
        raise KeyError(f"unknown volume {name!r}; choose from {', '.join(BUILDERS)}")
    return BUILDERS[name]()


@cache
def load_image(name: str) -> api.Volume:
    return api.load_volume(load_task(name).image)


def support_slices(n: int, k: int, seed: int) -> list[int]:
    """k slices spread evenly over n (one per k-th of the volume), each at the same seed-fixed offset
    u in [0.25, 0.75) of its k-th (a golden-ratio sequence over seeds, so that seeds differ where they can)."""
    u = 0.25 + 0.5 * ((0.1 + seed * 0.3819660113) % 1.0)
    return sorted({min(n - 1, int((i + u) * n / k)) for i in range(k)})


def body_pool(folder: Path) -> Path:
    """A folder of links to the four abdominal scans only (the lessons' "body-only pool")."""
    folder.mkdir(parents=True, exist_ok=True)
    src = BENCH_DATA / "volumes" / "totalseg"
    for name in ("example_ct_sm.nii.gz", "example_ct.nii.gz", "example_mr_sm.nii.gz", "example_ct_dicom"):
        link = folder / name
        if not link.exists():
            link.symlink_to(src / name)
    return folder


def pool_folder(pool: str, run_root: Path) -> str:
    """The folder a pre-training reads: every fetched volume ("all"), the abdominal scans ("body"), or a path."""
    if pool == "all":
        return str(BENCH_DATA / "volumes")
    if pool == "body":
        return str(body_pool(run_root / "pool_body"))
    return str(pool)
