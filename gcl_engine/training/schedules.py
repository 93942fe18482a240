"""Pure learning-rate schedule functions (step -> multiplier), so a checkpoint only needs the step."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup_fraction: float = 0.05) -> float:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to zero."""
    warmup = max(1, int(round(total * warmup_fraction)))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def one_cycle(step: int, total: int, peak_fraction: float = 0.3) -> float:
    """One-cycle shape (rise to the peak, cosine down), which fine-tuning on few slices preferred here."""
    peak = max(1, int(total * peak_fraction))
    if step < peak:
        return 0.1 + 0.9 * step / peak
    progress = min(1.0, (step - peak) / max(1, total - peak))
    return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer, base_lrs: list[float], factor: float) -> None:
    for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
        group["lr"] = base * factor
