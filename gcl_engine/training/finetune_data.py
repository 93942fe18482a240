"""Fine-tuning data: the annotated slices of one image, checked against the image, and their augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Rand2DElasticd, RandAffined

from gcl_engine.config import FinetuneConfig
from gcl_engine.data.augment import IntensityAugment
from gcl_engine.data.painted import check_unknown_value, painted_slices
from gcl_engine.data.preprocessing import prepare_label_slices, prepare_volume_slices, slice_layout, slices_along
from gcl_engine.data.slice_layout import SliceLayout
from gcl_engine.errors import InputError
from gcl_engine.io.loading import load_volume
from gcl_engine.io.volume import Volume
from gcl_engine.losses import IGNORE_INDEX


@dataclass
class AnnotatedSlices:
    image: Volume
    slices: torch.Tensor  # (n, S, S) every slice of the image, normalised
    labels: torch.Tensor  # (n, S, S) long, resampled label maps; IGNORE_INDEX where the label is unknown
    annotated: list[int]  # slice indices the loss may see
    class_names: list[str]
    layout: SliceLayout  # how ``slices`` were oriented and scaled (undone for previews); stored_shape in-plane
    source_labels: np.ndarray | None = None  # the label volume as given (the image's grid), for derived targets


def check_label_volume(image: Volume, labels: Volume, label_path: str) -> np.ndarray:
    if labels.array.shape != image.array.shape:
        raise InputError(label_path, f"label shape {labels.array.shape} does not match image shape {image.array.shape}")
    if not image.geometry.allclose(labels.geometry, tol=1e-3):
        raise InputError(label_path, "label geometry (spacing, origin or direction) differs from the image's")
    arr = labels.array
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError(label_path, "label values must be whole numbers")
        arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise InputError(label_path, f"negative label value {int(arr.min())}")
    return arr.astype(np.int64)


def load_annotated(cfg: FinetuneConfig, labels_array: np.ndarray | None = None) -> AnnotatedSlices:
    image = load_volume(cfg.image)
    if labels_array is None:
        labels_array = check_label_volume(image, load_volume(cfg.labels), cfg.labels)
    axis, unknown = cfg.preprocess.axis, cfg.unknown_value
    per_slice = slices_along(labels_array, axis)
    annotated = painted_slices(per_slice, unknown, cfg.slices, cfg.labels)
    if not annotated:
        raise InputError(cfg.labels, "no annotated slice: paint at least one slice (or list it with --slices)")
    known = labels_array[labels_array != unknown] if unknown is not None else labels_array
    names = _class_names(cfg, int(known.max()) if known.size else 0, cfg.labels)
    check_unknown_value(unknown, len(names), cfg.labels)
    g = image.geometry
    labels = prepare_label_slices(labels_array, cfg.preprocess, g.direction, g.spacing)
    if unknown is not None:
        labels[labels == unknown] = IGNORE_INDEX
    return AnnotatedSlices(
        image, prepare_volume_slices(image.array, image.meta.modality, cfg.preprocess, g.direction, g.spacing),
        labels, annotated, names, slice_layout(cfg.preprocess, image.array.shape, g.direction, g.spacing),
        labels_array,
    )


def _class_names(cfg: FinetuneConfig, max_label: int, label_path: str) -> list[str]:
    if cfg.class_names is None:
        return ["background"] + [f"class {i}" for i in range(1, max(max_label, 1) + 1)]
    names = list(cfg.class_names)
    if max_label >= len(names):
        raise InputError(label_path, f"class {max_label} is present in the labels but absent from the class "
                                     f"list ({len(names)} names, background included)")
    return names


def _plain(t: torch.Tensor) -> torch.Tensor:
    """A MONAI MetaTensor as a plain tensor (same storage): every later op of the training step would
    otherwise go through MetaTensor.__torch_function__ (fine-tuning ran ~25% slower, benchmarks/README.md)."""
    return t.as_tensor() if isinstance(t, MetaTensor) else torch.as_tensor(t)


class SegmentationAugment:
    """MONAI spatial transforms on image and label together (no flips: many classes are left/right)."""

    def __init__(self, size: int):
        self.spatial = Compose([
            RandAffined(keys=("image", "label"), prob=0.8, rotate_range=0.26, scale_range=0.15,
                        translate_range=size * 0.05, mode=("bilinear", "nearest"), padding_mode="border"),
            Rand2DElasticd(keys=("image", "label"), prob=0.3, spacing=(size // 4, size // 4),
                           magnitude_range=(1.0, 3.0), mode=("bilinear", "nearest"), padding_mode="border"),
        ])
        self.intensity = IntensityAugment()

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, S, S) or (b, C, S, S) float and (b, S, S) long -> augmented (b, C, S, S) and (b, S, S); the
        channels of a sample (a slice and its neighbours) move together."""
        if images.ndim == 3:
            images = images.unsqueeze(1)
        xs, ys = [], []
        for i in range(images.shape[0]):
            self.spatial.set_random_state(seed=(seed * 7919 + i) % 2**32)
            out = self.spatial({"image": images[i], "label": labels[i:i + 1].float()})
            xs.append(_plain(out["image"]))
            ys.append(_plain(out["label"])[0].round().long())
        x = torch.stack(xs)
        seeds = np.arange(images.shape[0]) + seed * 1009
        return self.intensity(x, seeds), torch.stack(ys)
