"""The rows of the annotation curve: what each simulated user works with, as plain data.

A row is a name plus settings; ``name[key=value,...]`` on the command line overrides settings of a named row
(``unet_scratch[steps=160]``) and keys starting with ``ft.`` go to the FinetuneConfig
(``recipe[ft.pseudo_weight=0.5]``), ``pt.`` to the PretrainConfig.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

# The GUI's CPU defaults before this benchmark (the "quick (CPU)" pre-training preset and the fine-tune form's steps)
GUI_NET = {"size": 64, "base_channels": 8, "levels": 4, "steps": 80}
# The recipe's network and budget: chosen on the MR screen (benchmarks/README.md); a continued fine-tune
# (every round after the first) takes steps_continue steps
RECIPE_NET = {"size": 96, "base_channels": 16, "levels": 5, "steps": 200, "steps_continue": 100}

BASE_ROWS: dict[str, dict[str, Any]] = {
    "interp_mci": {"kind": "interp", "method": "mci", "order": "even"},
    "interp_sdf": {"kind": "interp", "method": "sdf", "order": "even"},
    "forest": {"kind": "forest", "order": "even"},
    "unet_scratch": {"kind": "unet", "order": "even", **GUI_NET},
    "unet_recipe_net": {"kind": "unet", "order": "even", **RECIPE_NET},
    "unet_gcl": {"kind": "unet", "order": "even", "pretrain": "gcl", **RECIPE_NET},
    "recipe": {"kind": "unet", "order": "suggest", "variants": "fuse6+tta", **RECIPE_NET},
    "recipe_scribbles": {"kind": "unet", "order": "suggest", "paint": "scribble", "variants": "fuse6", **RECIPE_NET},
}


# Prediction-time settings scored on the same model as the row's own prediction (``variants=fuse6+tta``)
PREDICT_VARIANTS: dict[str, dict[str, Any]] = {
    "fuse3": {"interpolation_reach_mm": 3.0},
    "fuse6": {"interpolation_reach_mm": 6.0},
    "fuse12": {"interpolation_reach_mm": 12.0},
    "fuse24": {"interpolation_reach_mm": 24.0},
    "fuse48": {"interpolation_reach_mm": 48.0},
    "tta": {"tta_shift": 2},
    "fuse12tta": {"interpolation_reach_mm": 12.0, "tta_shift": 2},
}


@dataclass(frozen=True)
class Row:
    name: str
    settings: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    @property
    def variants(self) -> dict[str, dict[str, Any]]:
        names = [n for n in str(self.settings.get("variants", "")).split("+") if n]
        unknown = [n for n in names if n not in PREDICT_VARIANTS]
        if unknown:
            raise SystemExit(f"unknown prediction variant(s) {unknown}; choose from {', '.join(PREDICT_VARIANTS)}")
        return {n: PREDICT_VARIANTS[n] for n in names}

    @property
    def finetune_overrides(self) -> dict[str, Any]:
        return {k[3:]: v for k, v in self.settings.items() if k.startswith("ft.")}

    @property
    def pretrain_overrides(self) -> dict[str, Any]:
        return {k[3:]: v for k, v in self.settings.items() if k.startswith("pt.")}


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_row(text: str, defaults: dict[str, dict[str, Any]] | None = None) -> Row:
    rows = defaults or BASE_ROWS
    base, _, rest = text.partition("[")
    if base not in rows:
        raise SystemExit(f"unknown row {base!r}; rows: {', '.join(rows)}")
    settings = dict(rows[base])
    if rest:
        for item in rest.rstrip("]").split(","):
            key, _, value = item.partition("=")
            settings[key.strip()] = _value(value.strip())
    return Row(text, settings)
