"""Benchmark rows ("variants") and the smoke / cpu / gpu configurations.

A variant is a pre-training method plus overrides, written ``method[key=value,...]``:
  - a PretrainConfig field: ``gcl[temperature_image=0.2]``, ``gcl[lambda_pixel=0]``, ``gcl[position_within=global]``,
    ``gcl[meta_labels=subject+position]`` (a tuple field: values joined by "+")
  - ``steps`` (pre-training steps), ``size`` (pixels, pre-training and fine-tuning), ``levels`` (U-Net depth,
    both), ``fov`` (PreprocessConfig.field_of_view_mm, mm, both), ``pool`` (all | body)
  - ``ft.<FinetuneConfig field>`` for the fine-tuning recipe: ``gcl[ft.lr_encoder=1e-4]``
Each row is compared with the scratch row that shares its fine-tuning settings (``random`` plus the same
``size`` and ``ft.*`` overrides), seed by seed, on the same support slices.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from gcl_engine.config import FinetuneConfig, PretrainConfig

_PT_FIELDS = {f.name for f in dataclasses.fields(PretrainConfig)} - {
    "folder", "out", "cache", "method", "steps", "seed", "threads", "device", "preprocess", "model", "checkpoint_every"}
_FT_FIELDS = {f.name for f in dataclasses.fields(FinetuneConfig)} - {
    "image", "labels", "out", "pretrained", "init_model", "slices", "class_names", "seed", "threads", "device",
    "preprocess", "model", "preview_every", "preview_slices", "steps"}
_SPECIAL = {"steps", "size", "levels", "fov", "pool", "ft.steps"}


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass(frozen=True)
class Variant:
    method: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, spec: str) -> Variant:
        spec = spec.strip()
        if "[" not in spec:
            return cls(spec)
        if not spec.endswith("]"):
            raise ValueError(f"bad variant {spec!r}: expected method[key=value,...]")
        method, body = spec[:-1].split("[", 1)
        pairs = []
        for item in filter(None, (s.strip() for s in body.split(","))):
            key, _, val = item.partition("=")
            key = key.strip()
            if key not in _SPECIAL and key not in _PT_FIELDS and not (key.startswith("ft.") and key[3:] in _FT_FIELDS):
                raise ValueError(f"unknown override {key!r} in {spec!r}")
            value = tuple(val.strip().split("+")) if key == "meta_labels" else _value(val.strip())
            pairs.append((key, value))
        return cls(method.strip(), tuple(sorted(pairs)))

    @property
    def name(self) -> str:
        if not self.overrides:
            return self.method
        def text(v: Any) -> str:
            return "+".join(v) if isinstance(v, tuple) else str(v)

        return f"{self.method}[{','.join(f'{k}={text(v)}' for k, v in self.overrides)}]"

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.overrides).get(key, default)

    @property
    def pretrain_overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.overrides if k in _PT_FIELDS}

    @property
    def finetune_overrides(self) -> dict[str, Any]:
        return {k[3:]: v for k, v in self.overrides if k.startswith("ft.") and k != "ft.steps"}

    @property
    def trains(self) -> bool:
        return self.method != "random"

    def baseline(self) -> Variant:
        """The scratch row with the same fine-tuning settings."""
        keep = tuple((k, v) for k, v in self.overrides if k.startswith("ft.") or k in ("size", "levels", "fov"))
        return Variant("random", keep)


@dataclass
class Settings:
    """One benchmark configuration (command-line options override these)."""

    name: str
    variants: list[str]
    k: list[int]
    seeds: list[int]
    volumes: list[str]  # within-volume few-shot targets
    cross: list[str]  # "source>target": fine-tuned on source's support, scored on every slice of target
    size: int
    base_channels: int
    pretrain_steps: int
    finetune_steps: int
    volumes_per_batch: int
    pool: str  # "all" (every volume of bench-data/volumes) | "body" (the four abdominal scans) | a folder
    device: str
    workers: int
    threads: int | None
    probe_volumes: list[str] = field(default_factory=lambda: ["mr_sm", "ct_sm"])
    probe_steps: int = 300
    dev_volume: str = "mr_sm"  # where the lever rows are chosen; the others report
    data_workers: int | None = None  # pre-training batch-building processes (None: the engine's default)


MAIN_METHODS = ["random", "simclr", "single:*", "naive_sum", "gcl_no_filter", "gcl_no_mitigator", "gcl"]

PRESETS = {
    "smoke": Settings("smoke", ["random", "naive_sum", "gcl"], [1, 3], [0], ["mr_sm", "ct_sm"],
                      ["ct_sm>dicom_ct", "ct_sm>mr_sm"], size=64, base_channels=16, pretrain_steps=20,
                      finetune_steps=30, volumes_per_batch=2, pool="all", device="cpu", workers=2, threads=1,
                      probe_steps=50),
    # sized for ~60 min of wall time on 2 shared cores (see benchmarks/README.md, "Few-shot benchmark")
    "cpu": Settings("cpu", MAIN_METHODS, [1, 3, 5], [0, 1, 2], ["ct_sm"], ["ct_sm>dicom_ct", "ct_sm>mr_sm"],
                    size=64, base_channels=16, pretrain_steps=150, finetune_steps=300, volumes_per_batch=4,
                    pool="all", device="cpu", workers=2, threads=1),
    # the full protocol on one GPU (not run in full: several hours, more than a lease; see gpu_first_look);
    # several worker processes share it because fine-tuning's MONAI augmentation is CPU-bound
    "gpu": Settings("gpu", MAIN_METHODS, [1, 3, 5], [0, 1, 2, 3], ["mr_sm", "ct_sm", "itk_kmeans", "icbm"],
                    ["ct_sm>dicom_ct", "ct_sm>dicom_ct_as_ct_sm", "ct_sm>mr_sm"], size=224, base_channels=32,
                    pretrain_steps=3000, finetune_steps=300, volumes_per_batch=8, pool="all", device="cuda",
                    workers=4, threads=3),
    # what one 15-minute device lease holds (benchmarks/gpu_session.sh): 128 px, a schedule 3x the CPU one,
    # both abdominal volumes, k 1/3, three rows; pre-trainings run side by side with 1 batch worker each
    "gpu_first_look": Settings("gpu_first_look", ["random", "naive_sum", "gcl"], [1, 3], [0, 1, 2],
                               ["mr_sm", "ct_sm"], ["ct_sm>dicom_ct_as_ct_sm"], size=128, base_channels=32,
                               pretrain_steps=450, finetune_steps=300, volumes_per_batch=4, pool="all",
                               device="cuda", workers=8, threads=1, data_workers=1),
}
