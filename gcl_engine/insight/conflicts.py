"""The conflict matrix of a run: how the meta labels' gradients pulled against each other over training.

Read from ``metrics.jsonl``, where every step of a multi-label method logs, per branch (``img``, ``pix``),
the cosine between each pair's gradients (``<branch>/cos/<a>~<b>``: the exact mitigator's cosine of the
encoder's flattened parameter gradients, the fast one's mean over the batch's per-slice feature
gradients). A pair *fights* in a step when that cosine is negative: the step where following one meta
label undoes the other, which is what the Gradient Mitigator exists to resolve.
"""

from __future__ import annotations

import numpy as np

from gcl_engine.insight.results import ConflictMatrix


def conflict_matrices(rows: list[dict]) -> dict[str, ConflictMatrix]:
    """One matrix per branch that logged pair cosines, from :func:`read_metrics` rows."""
    values: dict[str, dict[tuple[str, str], list[float]]] = {}
    order: dict[str, list[str]] = {}
    for row in rows:
        for key, value in row.items():
            parts = key.split("/")
            if len(parts) != 3 or parts[1] != "cos" or "~" not in parts[2] or value != value:
                continue
            branch, (a, b) = parts[0], parts[2].split("~", 1)
            names = order.setdefault(branch, [])
            for name in (a, b):
                if name not in names:
                    names.append(name)
            values.setdefault(branch, {}).setdefault((a, b), []).append(float(value))
    return {branch: _matrix(branch, order[branch], pairs) for branch, pairs in values.items()}


def _matrix(branch: str, labels: list[str], pairs: dict[tuple[str, str], list[float]]) -> ConflictMatrix:
    m = len(labels)
    cos, rate, steps = np.eye(m), np.zeros((m, m)), np.zeros((m, m), dtype=int)
    for (a, b), series in pairs.items():
        i, j = labels.index(a), labels.index(b)
        arr = np.asarray(series)
        for (p, q) in ((i, j), (j, i)):
            cos[p, q], rate[p, q], steps[p, q] = arr.mean(), (arr < 0).mean(), len(arr)
    return ConflictMatrix(branch, labels, cos, rate, steps)


def cosine_series(rows: list[dict], branch: str) -> dict[str, tuple[list[int], list[float]]]:
    """Per pair ``"a~b"``: (steps, cosines) over training, for the report's curves."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    prefix = f"{branch}/cos/"
    for row in rows:
        for key, value in row.items():
            if key.startswith(prefix) and value == value:
                steps, ys = out.setdefault(key[len(prefix):], ([], []))
                steps.append(int(row.get("step", 0)))
                ys.append(float(value))
    return out
