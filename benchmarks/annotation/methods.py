"""What a simulated user works with, behind one interface: ``update(annotations, painted)`` -> labels.

* interpolation between the painted slices (ITK's filter or ours),
* the ilastik-style random forest,
* the U-Net through the engine's public API, one ``api.finetune`` per round that continues from the
  previous round's model (as the GUI's Fine-tune does), then a whole-volume ``Segmenter.predict``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gcl_engine import api
from gcl_engine.config import FinetuneConfig, ModelConfig, PredictConfig, PreprocessConfig

from .forest import ForestSegmenter
from .rows import Row


class InterpolationUser:
    suggests = False

    def __init__(self, row: Row, image: api.Volume, class_names, seed: int, work: Path):
        self.method = row.get("method", "sdf")
        sp = image.geometry.spacing
        self.pixel_mm = (float(sp[1]), float(sp[0]))  # rows = ITK j, columns = ITK i

    def update(self, annotations: np.ndarray, painted: list[int], unknown: int | None) -> tuple[np.ndarray, dict]:
        labels = api.interpolate_slices(annotations, painted, method=self.method, unknown_value=unknown,
                                        pixel_mm=self.pixel_mm)
        return labels.astype(np.int64), {}


class ForestUser:
    suggests = False

    def __init__(self, row: Row, image: api.Volume, class_names, seed: int, work: Path):
        t0 = time.perf_counter()
        self.forest = ForestSegmenter(image.array, seed, trees=int(row.get("trees", 50)))
        self.features_s = round(time.perf_counter() - t0, 1)

    def update(self, annotations: np.ndarray, painted: list[int], unknown: int | None) -> tuple[np.ndarray, dict]:
        t0 = time.perf_counter()
        self.forest.fit(annotations, painted, unknown)
        fit_s = time.perf_counter() - t0
        return self.forest.predict(), {"fit_s": round(fit_s, 2), "features_s": self.features_s}


class UNetUser:
    """The engine's fine-tuning, continued round after round; suggestions from ``api.rank_slices``."""

    suggests = True

    def __init__(self, row: Row, image: api.Volume, class_names, seed: int, work: Path,
                 image_path: str = "", pretrained: str | None = None):
        self.row, self.image, self.class_names, self.seed, self.work = row, image, tuple(class_names), seed, work
        self.image_path, self.pretrained = image_path, pretrained
        self.model: str | None = None
        self.round = 0
        self.preprocess = PreprocessConfig(size=int(row.get("size", 64)), field_of_view_mm=row.get("fov"),
                                           context_slices=int(row.get("context", 0)))
        self.net = ModelConfig(base_channels=int(row.get("base_channels", 8)), levels=int(row.get("levels", 4)))

    def update(self, annotations: np.ndarray, painted: list[int], unknown: int | None) -> tuple[np.ndarray, dict]:
        self.round += 1
        out = self.work / f"round_{self.round:02d}.pt"
        cfg = FinetuneConfig(
            image=self.image_path, out=str(out), pretrained=None if self.model else self.pretrained,
            init_model=self.model, slices=tuple(painted), class_names=self.class_names,
            steps=self._steps(), seed=self.seed * 1000 + self.round, threads=1, device="cpu",
            unknown_value=unknown, preprocess=self.preprocess, model=self.net, **self.row.finetune_overrides)
        t0 = time.perf_counter()
        result = api.finetune(cfg, labels_array=annotations)
        finetune_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        painted_labels = api.PaintedLabels(annotations, unknown, tuple(painted))
        predictions = {}
        for name, overrides in [("", self._predict_overrides()), *self.row.variants.items()]:
            seg = api.Segmenter.load(result.model_path, PredictConfig(device="cpu", backend="torch", **overrides))
            predictions[name] = seg.predict(self.image, painted=painted_labels).labels.astype(np.int64)
            if name == "":
                predict_s = time.perf_counter() - t1
        if self.model:
            Path(self.model).unlink(missing_ok=True)
        self.model = result.model_path
        main = predictions.pop("")
        timing = {"finetune_s": round(finetune_s, 2), "predict_s": round(predict_s, 2)}
        return main, {**timing, "variants": predictions} if predictions else timing

    def _steps(self) -> int:
        """The row's steps; ``steps_continue`` for a fine-tune that continues from the previous round's model."""
        first = int(self.row.get("steps", 80))
        return first if self.model is None else int(self.row.get("steps_continue", first))

    def _predict_overrides(self) -> dict:
        return {k[3:]: v for k, v in self.row.settings.items() if k.startswith("pr.")}

    def suggest(self, painted: list[int], top: int = 1) -> tuple[int, float]:
        t0 = time.perf_counter()
        ranking = api.rank_slices(self.model, self.image, painted, strategy=self.row.get("suggest", "default"))
        return ranking[0].slice, time.perf_counter() - t0


def make_user(row: Row, image: api.Volume, class_names, seed: int, work: Path, image_path: str,
              pretrained: str | None):
    kind = row.get("kind")
    if kind == "interp":
        return InterpolationUser(row, image, class_names, seed, work)
    if kind == "forest":
        return ForestUser(row, image, class_names, seed, work)
    if kind == "unet":
        return UNetUser(row, image, class_names, seed, work, image_path, pretrained)
    raise ValueError(f"row {row.name}: unknown kind {kind!r}")
