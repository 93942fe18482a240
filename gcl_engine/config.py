"""Frozen dataclass configs with ``validate()`` and JSON round trips.

Every design choice of GCL_SPEC.md that is ours (not the paper's) is a field here with its default.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gcl_engine.errors import ConfigError

T = TypeVar("T")

METHODS = ("random", "simclr", "naive_sum", "gcl_no_filter", "gcl_no_mitigator", "gcl")
BUILTIN_META_LABELS = ("subject", "position", "phase", "series")


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class PreprocessConfig:
    """How volumes become fixed-size normalised 2D slices (shared by pre-training, fine-tuning, inference)."""

    size: int = 128  # in-plane size after resampling (128 on CPU, 224 on GPU)
    axis: int = 0  # numpy axis of the SimpleITK array to slice along (0 = ITK index k)
    ct_window: tuple[float, float] = (-250.0, 350.0)
    mr_percentiles: tuple[float, float] = (0.5, 99.5)
    # "canonical": in-plane axes transposed/flipped to the patient axes before resizing (data/orientation.py);
    # "stored": the array as stored (models saved before this option existed load with it)
    orientation: str = "canonical"
    # None: each slice's whole field of view is resized to size x size; a number (mm): slices are resampled at
    # field_of_view_mm / size mm per pixel, centred, so organs have one pixel size across scans
    field_of_view_mm: float | None = None
    # 2.5D: the network sees this many neighbouring slices on each side as extra input channels (0: 2D)
    context_slices: int = 0

    @property
    def input_channels(self) -> int:
        return 1 + 2 * self.context_slices

    def validate(self) -> None:
        _check(0 <= self.context_slices <= 4, f"context_slices must be in 0..4, got {self.context_slices}")
        _check(16 <= self.size <= 1024 and self.size % 16 == 0,
               f"size must be a multiple of 16 in [16, 1024], got {self.size}")
        _check(self.axis in (0, 1, 2), f"axis must be 0, 1 or 2, got {self.axis}")
        _check(self.ct_window[0] < self.ct_window[1], f"ct_window must be (low, high), got {self.ct_window}")
        lo, hi = self.mr_percentiles
        _check(0 <= lo < hi <= 100, f"mr_percentiles must be 0 <= low < high <= 100, got {self.mr_percentiles}")
        _check(self.orientation in ("canonical", "stored"), "orientation must be 'canonical' or 'stored'")
        _check(self.field_of_view_mm is None or self.field_of_view_mm > 0, "field_of_view_mm must be > 0 or None")


@dataclass(frozen=True)
class ModelConfig:
    """2D U-Net with GroupNorm; channels base * 2**level for ``levels`` levels."""

    in_channels: int = 1
    base_channels: int = 16  # 16 on CPU, 32 on GPU
    levels: int = 5
    groups: int = 8  # GroupNorm groups (clipped to the channel count)
    image_proj_hidden: int = 256
    image_proj_dim: int = 128
    pixel_proj_hidden: int = 128
    pixel_proj_dim: int = 64

    def validate(self) -> None:
        _check(self.in_channels >= 1, "in_channels must be >= 1")
        _check(self.base_channels >= 4, f"base_channels must be >= 4, got {self.base_channels}")
        _check(2 <= self.levels <= 7, f"levels must be in [2, 7], got {self.levels}")

    @property
    def encoder_channels(self) -> int:
        return self.base_channels * 2 ** (self.levels - 1)


@dataclass(frozen=True)
class PretrainConfig:
    folder: str = ""
    out: str = ""
    cache: str | None = None
    method: str = "gcl"  # one of METHODS or "single:<meta label>"
    meta_labels: tuple[str, ...] = ("subject", "position", "phase", "series")  # used where usable
    meta_csv: str | None = None  # sidecar CSV keyed by file name (extra meta labels, one per column)
    position_partitions: int = 4
    position_within: str = "series"  # position bins compared "global"ly or only "series"-wise
    steps: int = 300
    volumes_per_batch: int = 4  # V
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    optimizer: str = "adamw"  # "adamw" | "radam" | "sgd" (momentum 0.9; used to compare runs exactly)
    temperature_image: float = 0.07
    temperature_pixel: float = 0.1
    lambda_pixel: float = 1.0
    mitigator: str = "fast"  # "fast" | "exact"
    gradient_filter: str = "A"  # "A" (image saliency) | "B" (pair gradients) | "none"
    filter_ratio: float = 0.25  # rho for variant A
    filter_top_k: int = 32  # pairs kept per anchor for variant B
    pixel_positive: str = "location"  # "location" (same aligned location) | "slice" (any pixel of the slice)
    pixel_level: int = -1  # resolution level the pixel head reads: -1 the bottleneck, -2 the one above (2x finer)...
    pixel_features: str = "encoder"  # whose map at that level: "encoder" | "decoder" (pre-trains decoder blocks)
    unknown_values: str = "ignore"  # a slice whose meta label is unknown: "ignore" (out of that label's loss)
    #                                 | "volume" (positive of its own volume's slices, the old behaviour)
    augment_strength: float = 1.0
    checkpoint_every: int = 50
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA only
    seed: int = 0
    threads: int | None = None
    data_workers: int | None = None  # batch-building processes; None: 0 on CPU, up to 8 beside a GPU
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

    def validate(self) -> None:
        m = self.method
        _check(m in METHODS or (m.startswith("single:") and len(m) > 7),
               f"method must be one of {METHODS} or single:<meta label>, got {m!r}")
        _check(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        _check(self.volumes_per_batch >= 1, f"volumes_per_batch must be >= 1, got {self.volumes_per_batch}")
        _check(self.position_partitions >= 2, f"position_partitions must be >= 2, got {self.position_partitions}")
        _check(self.position_within in ("global", "series"), "position_within must be 'global' or 'series'")
        _check(0 < self.lr < 1, f"lr must be in (0, 1), got {self.lr}")
        _check(0 <= self.warmup_fraction < 1, "warmup_fraction must be in [0, 1)")
        _check(self.optimizer in ("adamw", "radam", "sgd"), f"unknown optimizer {self.optimizer!r}")
        _check(self.temperature_image > 0 and self.temperature_pixel > 0, "temperatures must be > 0")
        _check(self.mitigator in ("fast", "exact"), f"mitigator must be fast or exact, got {self.mitigator!r}")
        _check(self.gradient_filter in ("A", "B", "none"), "gradient_filter must be A, B or none")
        _check(0 < self.filter_ratio <= 1, f"filter_ratio must be in (0, 1], got {self.filter_ratio}")
        _check(self.filter_top_k >= 1, "filter_top_k must be >= 1")
        _check(self.pixel_positive in ("location", "slice"), "pixel_positive must be location or slice")
        _check(self.unknown_values in ("ignore", "volume"), "unknown_values must be 'ignore' or 'volume'")
        _check(self.checkpoint_every >= 1, "checkpoint_every must be >= 1")
        _check(self.lambda_pixel >= 0, "lambda_pixel must be >= 0")
        _check(-self.model.levels <= self.pixel_level <= -1,
               f"pixel_level must be in -{self.model.levels}..-1 (an encoder level), got {self.pixel_level}")
        _check(self.pixel_features in ("encoder", "decoder"), "pixel_features must be 'encoder' or 'decoder'")
        _check(self.pixel_features == "encoder" or self.pixel_level <= -2,
               "pixel_features='decoder' needs pixel_level <= -2 (the decoder starts above the bottleneck)")
        self.preprocess.validate()
        self.model.validate()


@dataclass(frozen=True)
class FinetuneConfig:
    image: str = ""
    labels: str = ""  # label volume (same grid as the image); annotated slices are taken from it
    out: str = ""
    pretrained: str | None = None  # pre-training checkpoint, or None for random initialisation
    init_model: str | None = None  # a fine-tuned model to continue from (the interactive loop)
    slices: tuple[int, ...] | None = None  # explicit annotated slices; None: every slice holding a label
    # None: unpainted voxels of a painted slice are background; a number: voxels of that value are unknown
    # (scribbles: never seen by the loss), and a slice is painted when it holds any other value
    unknown_value: int | None = None
    # training targets on unpainted slices (training/extra_targets.py); 0 = off
    pseudo_label_weight: float = 0.0  # the starting model's confident pixels (continued fine-tunes only)
    pseudo_label_threshold: float = 0.9
    interpolation_target_weight: float = 0.0  # the interpolation between painted slices
    interpolation_target_reach_mm: float = 10.0
    class_names: tuple[str, ...] | None = None  # index 0 is background; None: "class 1", ...
    steps: int = 300
    batch_size: int = 4
    lr_encoder: float = 3e-4
    lr_decoder: float = 3e-3
    freeze_encoder_steps: int = 0  # the encoder stays as loaded for this many first steps (decoder first)
    weight_decay: float = 1e-4
    class_weighted_ce: bool = True
    dice_weight: float = 1.0
    ce_weight: float = 1.0
    augment: bool = True
    preview_every: int = 25
    preview_slices: tuple[int, ...] = ()
    device: str = "auto"
    seed: int = 0
    threads: int | None = None
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

    def validate(self) -> None:
        _check(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(0 <= self.freeze_encoder_steps <= self.steps, "freeze_encoder_steps must be in [0, steps]")
        _check(0 < self.lr_encoder < 1 and 0 < self.lr_decoder < 1, "learning rates must be in (0, 1)")
        _check(self.preview_every >= 1, "preview_every must be >= 1")
        _check(self.pseudo_label_weight >= 0 and self.interpolation_target_weight >= 0,
               "extra-target weights must be >= 0")
        _check(0 < self.pseudo_label_threshold <= 1, "pseudo_label_threshold must be in (0, 1]")
        _check(self.interpolation_target_reach_mm > 0, "interpolation_target_reach_mm must be > 0")
        _check(self.unknown_value is None or self.unknown_value >= 1,
               f"unknown_value must be >= 1 (0 is background), got {self.unknown_value}")
        self.preprocess.validate()
        self.model.validate()


@dataclass(frozen=True)
class PredictConfig:
    backend: str = "auto"  # "auto" | "torch" | "onnxruntime"
    device: str = "auto"
    # slices per network call: 8 holds a 512x512x300 CT under 1 GB with onnxruntime (16: 1.3 GB, no faster)
    batch_size: int = 8
    largest_component: bool = False
    # CPU threads: onnxruntime's session, and torch's (process-wide) when given; None: the libraries' default
    threads: int | None = None
    # test-time augmentation: average the network over 4 copies of each slice shifted by this many pixels (0: off)
    tta_shift: int = 0
    # with painted labels given to predict(): weight exp(-d / reach) of the interpolation between painted slices
    # (d: mm to the nearest painted slice); None: painted voxels are kept, the rest is the network's
    interpolation_reach_mm: float | None = None
    interpolation_method: str = "sdf"
    # how the network's probabilities reach the scan's grid before the argmax. "labels": only pixels on a class
    # boundary get their K interpolated probabilities (the same labels, data/label_resample.py); "probabilities":
    # every class's map is upsampled to full size first (the older path: 118 classes at 512^2 is 124 MB a slice;
    # kept for comparison). Keeping probabilities or uncertainty, and slices blended with painted ones, always
    # take the full maps.
    upsample: str = "labels"

    def validate(self) -> None:
        _check(self.upsample in ("labels", "probabilities"), "upsample must be 'labels' or 'probabilities'")
        _check(self.backend in ("auto", "torch", "onnxruntime"), f"unknown backend {self.backend!r}")
        _check(self.tta_shift >= 0, f"tta_shift must be >= 0, got {self.tta_shift}")
        _check(self.interpolation_reach_mm is None or self.interpolation_reach_mm > 0,
               "interpolation_reach_mm must be > 0 or None")
        _check(self.interpolation_method in ("sdf", "mci"), "interpolation_method must be 'sdf' or 'mci'")
        _check(self.batch_size >= 1, "batch_size must be >= 1")
        _check(self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}")


# --- JSON round trips -------------------------------------------------------------------------

def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def to_json(config: Any) -> str:
    return json.dumps(to_dict(config), indent=2, sort_keys=True)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a (nested) config from a dict, turning lists back into tuples; unknown keys are an error."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        nested = _NESTED.get(name)
        if nested is not None and isinstance(value, dict):
            value = from_dict(nested, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def from_json(cls: type[T], text: str) -> T:
    return from_dict(cls, json.loads(text))


def from_saved_json(cls: type[T], text: str) -> T:
    """A config that this or an older version saved (a checkpoint, a model, ONNX metadata).

    ``to_json`` writes every field, so a field missing from saved text was added later: it takes the value
    that reproduces what the older version did (``_BEFORE_FIELD``), not today's default, so an old model
    keeps predicting as it was trained. User-written config files go through :func:`from_json` instead.
    """
    return from_dict(cls, _fill_missing(cls, json.loads(text)))


def _fill_missing(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for name, value in _BEFORE_FIELD.get(cls, {}).items():
        out.setdefault(name, value)
    for name, value in data.items():
        nested = _NESTED.get(name)
        if nested is not None and isinstance(value, dict):
            out[name] = _fill_missing(nested, value)
    return out


def load_json(cls: type[T], path: str | Path) -> T:
    return from_json(cls, Path(path).read_text(encoding="utf-8"))


_NESTED: dict[str, type] = {"preprocess": PreprocessConfig, "model": ModelConfig}
# fields added after configs were first saved, with the value that means "as before"
_BEFORE_FIELD: dict[type, dict[str, Any]] = {PreprocessConfig: {"orientation": "stored"},
                                             PretrainConfig: {"unknown_values": "volume"}}
