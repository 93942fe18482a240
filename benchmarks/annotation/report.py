"""Tables and the plot of the annotation curve: Dice after each painted slice, mean ± sd over seeds."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

METRICS = {"mean": "mean 3D Dice over classes", "small": "small organs (3D Dice)",
           "slice_mean": "slice-aggregated Dice"}


class Curves:
    """records -> values[(row, task, metric)][round] = [per-seed values], seed order kept for pairing."""

    def __init__(self, records: list[dict], rows: list[str], tasks: list[str], rounds: int):
        self.rows, self.tasks, self.rounds = rows, tasks, rounds
        self.by: dict[tuple[str, str, int], dict] = {(r["row"], r["task"], r["seed"]): r for r in records}
        self.seeds = sorted({r["seed"] for r in records})

    def values(self, row: str, task: str, metric: str, rnd: int) -> dict[int, float]:
        out = {}
        for seed in self.seeds:
            rec = self.by.get((row, task, seed))
            if rec and len(rec["rounds"]) >= rnd:
                v = rec["rounds"][rnd - 1].get(metric)
                if v is not None and not np.isnan(v):
                    out[seed] = float(v)
        return out

    def cell(self, row: str, task: str, metric: str, rnd: int) -> str:
        v = list(self.values(row, task, metric, rnd).values())
        if not v:
            return ""
        return f"{np.mean(v):.3f} ± {np.std(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"

    def mean(self, row: str, task: str, metric: str, rnd: int) -> float:
        v = list(self.values(row, task, metric, rnd).values())
        return float(np.mean(v)) if v else float("nan")

    def paired(self, row: str, other: str, task: str, metric: str, rnd: int, other_rnd: int | None = None) -> str:
        a = self.values(row, task, metric, rnd)
        b = self.values(other, task, metric, other_rnd or rnd)
        common = sorted(set(a) & set(b))
        if not common:
            return ""
        d = np.array([a[s] - b[s] for s in common])
        return f"{d.mean():+.3f} ± {d.std():.3f} ({int((d > 0).sum())}/{len(d)})"

    def seed_table(self) -> str:
        """Which seeds each row has on each task: a cell without '±' is one seed."""
        lines = ["| row | " + " | ".join(self.tasks) + " |", "|---" * (len(self.tasks) + 1) + "|"]
        for row in self.rows:
            cells = [", ".join(str(s) for s in self.seeds if (row, t, s) in self.by) for t in self.tasks]
            if any(cells):
                lines.append(f"| {row} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def tasks_with(self, metric: str) -> list[str]:
        return [t for t in self.tasks if any(self.values(r, t, metric, 1) for r in self.rows)]

    def curve_table(self, task: str, metric: str) -> str:
        head = "| row | " + " | ".join(f"k={r}" for r in range(1, self.rounds + 1)) + " |"
        lines = [head, "|---" * (self.rounds + 1) + "|"]
        for row in self.rows:
            cells = [self.cell(row, task, metric, r) for r in range(1, self.rounds + 1)]
            if any(cells):
                lines.append(f"| {row} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def time_table(self) -> str:
        lines = ["| row | " + " | ".join(self.tasks) + " |", "|---" * (len(self.tasks) + 1) + "|"]
        for row in self.rows:
            cells = []
            for task in self.tasks:
                walls = [rd["wall_s"] for s in self.seeds if (rec := self.by.get((row, task, s)))
                         for rd in rec["rounds"]]
                cells.append(f"{np.mean(walls):.1f} (max {np.max(walls):.1f})" if walls else "")
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def coverage(self, row: str) -> float:
        shares = [rd.get("painted_share", 1.0) for rec in self.by.values() if rec["row"] == row
                  for rd in rec["rounds"]]
        return float(np.mean(shares)) if shares else float("nan")


def targets_table(c: Curves, recipe: str, anchor: str, scratch: str, scribbles: str | None, gcl: str | None,
                  metric: str = "mean") -> str:
    """The issue's targets, per task: measured value beside each target."""
    k3, k10 = 3, min(10, c.rounds)
    lines = ["| task | recipe k=3 vs anchor k=10 (>= 0) | recipe − anchor at k=3 (>= +0.15) | "
             "worst round: recipe − anchor (>= 0) | recipe − scratch at k=3 (>= +0.05) | "
             "GCL − scratch at k=3 | scribbles / full at k=3 (>= 0.90) |",
             "|---|---|---|---|---|---|---|"]
    for task in c.tasks_with(metric):
        worst = min(((c.mean(recipe, task, metric, r) - c.mean(anchor, task, metric, r), r)
                     for r in range(1, c.rounds + 1)), default=(float("nan"), 0))
        ratio = ""
        if scribbles:
            s, f = c.mean(scribbles, task, metric, k3), c.mean(recipe, task, metric, k3)
            ratio = f"{s / f:.3f}" if f == f and s == s and f > 0 else ""
        lines.append(
            f"| {task} | {c.paired(recipe, anchor, task, metric, k3, k10)} | "
            f"{c.paired(recipe, anchor, task, metric, k3)} | {worst[0]:+.3f} (k={worst[1]}) | "
            f"{c.paired(recipe, scratch, task, metric, k3)} | "
            f"{c.paired(gcl, scratch, task, metric, k3) if gcl else ''} | {ratio} |")
    return "\n".join(lines)


def plot(c: Curves, path: Path, metric: str = "mean") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = c.tasks_with(metric)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        palette = plt.get_cmap("tab20")  # one colour per row (the default cycle repeats after ten)
        for i, row in enumerate(c.rows):
            xs, ms, sds = [], [], []
            for r in range(1, c.rounds + 1):
                v = list(c.values(row, task, metric, r).values())
                if v:
                    xs.append(r)
                    ms.append(np.mean(v))
                    sds.append(np.std(v))
            if xs:
                ms_, sds_ = np.array(ms), np.array(sds)
                colour = palette(i % 20)
                ax.plot(xs, ms_, marker="o", ms=3, label=row, color=colour, linestyle="--" if "~" in row else "-")
                ax.fill_between(xs, ms_ - sds_, ms_ + sds_, alpha=0.15, color=colour)
        ax.set_title(task)
        ax.set_xlabel("painted slices")
        ax.set_ylabel(METRICS[metric])
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def per_class_table(c: Curves, task: str, rows: list[str], rnd: int) -> str:
    names: dict[str, None] = {}
    for rec in c.by.values():
        if rec["task"] == task and len(rec["rounds"]) >= rnd:
            names.update(dict.fromkeys(rec["rounds"][rnd - 1]["dice"]))
    lines = ["| row | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in rows:
        acc = defaultdict(list)
        for s in c.seeds:
            rec = c.by.get((row, task, s))
            if rec and len(rec["rounds"]) >= rnd:
                for n, v in rec["rounds"][rnd - 1]["dice"].items():
                    acc[n].append(v)
        if acc:
            lines.append(f"| {row} | " + " | ".join(f"{np.mean(acc[n]):.2f}" if acc[n] else "" for n in names) + " |")
    return "\n".join(lines)
