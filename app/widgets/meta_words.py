"""The words a clinician reads for the engine's meta labels and metric keys.

The engine names things for code (``position``, ``pix/loss/phase``, ``img/conflict_rate``); the scan table
and the loss legend show what each one means instead. One table, so both say the same.
"""

from __future__ import annotations

META_NAMES = {
    "subject": ("Patient", "slices of one patient against another's"),
    "position": ("Body height", "slices at a similar height along the body axis"),
    "phase": ("Time phase", "frames of a time series (a cardiac cycle, say) by phase"),
    "series": ("Scan series", "slices of one acquisition against another's"),
}
BRANCHES = {"img": "whole slice", "pix": "per pixel"}
LOSS_EXPLANATION = ("Solid lines: how well pre-training tells slices apart by each label (lower is better; "
                    "the thick one is the total). Dashed: how often two labels pull the network in opposite "
                    "directions, which GCL resolves.")


def meta_name(key: str) -> str:
    return META_NAMES.get(key, (key.replace("_", " ").capitalize(), ""))[0]


def meta_meaning(key: str) -> str:
    return META_NAMES.get(key, ("", ""))[1]


def metric_name(key: str) -> str:
    """``loss`` -> "total loss"; ``img/loss/subject`` -> "Patient (whole slice)"; ``pix/conflict_rate`` ->
    "conflicts (per pixel)"; anything else is shown as it is."""
    if key == "loss":
        return "total loss"
    parts = key.split("/")
    branch = BRANCHES.get(parts[0], parts[0])
    if len(parts) == 3 and parts[1] == "loss":
        return f"{meta_name(parts[2])} ({branch})"
    if len(parts) == 2 and parts[1] == "conflict_rate":
        return f"conflicts ({branch})"
    return key
