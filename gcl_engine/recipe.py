"""The interactive loop's defaults: what one press of Fine-tune trains when nothing else decides.

Chosen on the annotation benchmark (benchmarks/annotation_curve.py, results in benchmarks/results/
annotation_curve_main.md): on every task a 96 px U-Net of base width 16 and 5 levels, 200 steps on the first
fine-tune and 100 on each fine-tune that continues from the current model, beat the old GUI defaults (64 px,
base 8, 4 levels, 80 steps) by 0.09-0.45 mean Dice at 1-3 painted slices, and stays under a minute per round on two
CPU cores. A pre-trained encoder or a model being continued fixes the network instead (its shape is kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gcl_engine.config import ModelConfig, PreprocessConfig


@dataclass(frozen=True)
class InteractiveRecipe:
    preprocess: PreprocessConfig = field(default_factory=lambda: PreprocessConfig(size=96))
    model: ModelConfig = field(default_factory=lambda: ModelConfig(base_channels=16, levels=5))
    steps_first: int = 200  # a fine-tune that starts from scratch or from a pre-trained encoder
    steps_continue: int = 100  # a fine-tune that continues from the current model (one more painted slice)
    suggestion_strategy: str = "default"

    def steps(self, continuing: bool) -> int:
        return self.steps_continue if continuing else self.steps_first


RECIPE = InteractiveRecipe()
