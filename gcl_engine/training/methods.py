"""What each pre-training method switches on (the benchmark's rows)."""

from __future__ import annotations

from dataclasses import dataclass

from gcl_engine.errors import ConfigError


@dataclass(frozen=True)
class MethodPlan:
    name: str
    image_labels: tuple[str, ...]  # meta labels of the image branch ("instance" = SimCLR)
    pixel: bool  # pixel-level contrast on
    mitigate: bool  # Gradient Mitigator on (else: plain sum)
    gradient_filter: str  # "A" | "B" | "none"
    trains: bool = True


def plan_method(method: str, usable: list[str], gradient_filter: str) -> MethodPlan:
    """Resolve a method name against the meta labels usable on this data."""
    if method == "random":
        return MethodPlan(method, (), False, False, "none", trains=False)
    if method == "simclr":
        return MethodPlan(method, ("instance",), False, False, "none")
    if method.startswith("single:"):
        name = method.split(":", 1)[1]
        if name not in usable:
            raise ConfigError(f"meta label {name!r} is not usable on this data (usable: {', '.join(usable) or 'none'})")
        return MethodPlan(method, (name,), False, False, "none")
    if not usable:
        raise ConfigError(
            "no usable meta label on this data (each needs two values or more): "
            "add volumes, a CSV sidecar, or use --method simclr"
        )
    labels = tuple(usable)
    if method == "naive_sum":
        return MethodPlan(method, labels, False, False, "none")
    if method == "gcl_no_filter":
        return MethodPlan(method, labels, True, True, "none")
    if method == "gcl_no_mitigator":
        return MethodPlan(method, labels, True, False, gradient_filter)
    if method == "gcl":
        return MethodPlan(method, labels, True, True, gradient_filter)
    raise ConfigError(f"unknown method {method!r}")
