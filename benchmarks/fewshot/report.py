"""Tables (markdown), paired differences against scratch, diagnostics and probe summaries, the plot."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .protocol import Plan, Records
from .variants import Variant

METRICS = {"mean3d": "3D Dice, mean over classes", "small3d": "3D Dice, small organs only",
           "mean_slice": "slice-aggregated Dice, mean over classes"}


def _ms(values: list[float]) -> str:
    vals = [v for v in values if v == v]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1):.3f}"


def _delta(values: list[float]) -> str:
    vals = [v for v in values if v == v]
    if not vals:
        return "-"
    wins = sum(v > 0 for v in vals)
    sd = f" ± {np.std(vals, ddof=1):.3f}" if len(vals) > 1 else ""
    return f"{np.mean(vals):+.3f}{sd} ({wins}/{len(vals)})"


class Results:
    """Scores indexed by (variant, target, k, seed), from the records of one plan."""

    def __init__(self, plan: Plan, records: Records):
        self.plan, self.records = plan, records
        self.scores: dict[tuple[str, str, int, int], dict] = {}
        self.pretrain: dict[tuple[str, int], dict] = {}
        self.targets: list[str] = []
        for job in plan.finetune.values():
            rec = records.by_key.get(job["key"])
            if rec is None:
                continue
            for target, sc in rec["targets"].items():
                self.scores[(job["variant"], target, job["k"], job["seed"])] = {**sc, "finetune_s": rec["finetune_s"]}
                if target not in self.targets:
                    self.targets.append(target)
        for (variant, seed), pkey in plan.rows.items():
            if pkey in records.by_key:
                self.pretrain[(variant, seed)] = records.by_key[pkey]
        order = {v: i for i, v in enumerate(plan.settings.volumes)}
        self.targets.sort(key=lambda t: (">" in t, order.get(t.split(">")[0], 99), t))

    @property
    def variants(self) -> list[Variant]:
        return self.plan.variants

    def values(self, variant: str, target: str, k: int, metric: str) -> dict[int, float]:
        out = {}
        for seed in self.plan.settings.seeds:
            sc = self.scores.get((variant, target, k, seed))
            if sc is not None:
                out[seed] = sc[metric]
        return out

    def deltas(self, v: Variant, target: str, k: int, metric: str, against: str | None = None) -> list[float]:
        base = self.values(against or v.baseline().name, target, k, metric)
        mine = self.values(v.name, target, k, metric)
        return [mine[s] - base[s] for s in sorted(mine) if s in base and mine[s] == mine[s] and base[s] == base[s]]

    # --- tables -------------------------------------------------------------------------------------

    def summary_table(self, target: str, metric: str) -> str:
        ks = self.plan.settings.k
        head = "| variant | " + " | ".join(f"k={k} Dice | k={k} Δ vs scratch" for k in ks) + " |"
        rule = "|---|" + "---|---|" * len(ks)
        lines = [head, rule]
        for v in self.variants:
            cells = []
            for k in ks:
                vals = list(self.values(v.name, target, k, metric).values())
                cells.append(_ms(vals))
                cells.append("(reference)" if not v.trains and v == v.baseline() else _delta(
                    self.deltas(v, target, k, metric)))
            lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def per_class_table(self, target: str, k: int) -> str:
        classes: list[str] = []
        for (_, t, kk, _), sc in self.scores.items():
            if t == target and kk == k:
                classes += [c for c in sc["dice3d"] if c not in classes]
        if not classes:
            return ""
        short = [c.replace("inferior_vena_cava", "IVC").replace("portal_splenic_vein", "portal_v")
                 .replace("adrenal_glands", "adrenals").replace("kidney_", "kid_") for c in classes]
        lines = ["| variant | " + " | ".join(short) + " |", "|---|" + "---|" * len(classes)]
        for v in self.variants:
            cells = []
            for c in classes:
                vals = [self.scores[(v.name, target, k, s)]["dice3d"].get(c, float("nan"))
                        for s in self.plan.settings.seeds if (v.name, target, k, s) in self.scores]
                vals = [x for x in vals if x == x]
                cells.append(f"{np.mean(vals):.2f}" if vals else "-")
            lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def diagnostics_table(self) -> str:
        keys_seen: list[str] = []
        for rec in self.pretrain.values():
            keys_seen += [k for k in rec.get("diagnostics", {}) if k not in keys_seen]
        wanted = [k for k in keys_seen if k.startswith(("img/loss", "pix/loss"))] + [
            k for k in ("loss", "embedding_std", "img/conflict_rate", "pix/conflict_rate", "pixel/kept_share")
            if k in keys_seen]
        cos = [k for k in keys_seen if "/cos/" in k]
        lines = ["| variant | meta labels | " + " | ".join(wanted + cos) + " | slices/s | pre-train s |",
                 "|---|---|" + "---|" * (len(wanted) + len(cos) + 2)]
        for v in self.variants:
            recs = [self.pretrain[(v.name, s)] for s in self.plan.settings.seeds if (v.name, s) in self.pretrain]
            if not recs or not v.trains:
                continue
            cells = []
            for k in wanted + cos:
                f = [r["diagnostics"][k]["first"] for r in recs if k in r["diagnostics"]]
                la = [r["diagnostics"][k]["last"] for r in recs if k in r["diagnostics"]]
                cells.append(f"{np.mean(f):.3f} → {np.mean(la):.3f}" if f else "")
            sps = [r["diagnostics"]["slices_per_s"]["last"] for r in recs if "slices_per_s" in r["diagnostics"]]
            secs = [r["pretrain_s"] for r in recs]
            speed = f"{np.mean(sps):.0f}" if sps else "-"
            lines.append(f"| {v.name} | {','.join(recs[0]['meta_labels'])} | " + " | ".join(cells)
                         + f" | {speed} | {np.mean(secs):.0f} |")
        return "\n".join(lines)

    def probe_table(self) -> str:
        vols = self.plan.settings.probe_volumes
        lines = ["| variant | " + " | ".join(f"{v} bottleneck | {v} all levels" for v in vols) + " |",
                 "|---|" + "---|---|" * len(vols)]
        for v in self.variants:
            recs = [self.pretrain[(v.name, s)] for s in self.plan.settings.seeds if (v.name, s) in self.pretrain]
            if not recs:
                continue
            cells = []
            for vol in vols:
                for kind in ("bottleneck", "all_levels"):
                    cells.append(_ms([r["probe"].get(vol, {}).get(kind, float("nan")) for r in recs]))
            lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def seed_spread(self, target: str, k: int, metric: str, baseline: str = "random") -> float:
        vals = list(self.values(baseline, target, k, metric).values())
        return float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")

    def target_check(self, metric: str = "small3d") -> str:
        """The issue's target, stated with the numbers (GCL vs scratch and vs naive sum, paired)."""
        lines = []
        gcl = next((v for v in self.variants if v.name == "gcl"), None)
        naive = next((v for v in self.variants if v.name == "naive_sum"), None)
        if gcl is None:
            return "(no `gcl` row in this run)"
        for target in self.targets:
            if ">" in target:
                continue
            for k in self.plan.settings.k:
                d = self.deltas(gcl, target, k, metric)
                if not d:
                    continue
                spread = self.seed_spread(target, k, metric)
                dn = self.deltas(gcl, target, k, metric, against="naive_sum") if naive else []
                ok = np.mean(d) >= 0.05
                lines.append(
                    f"- {target} k={k} ({metric}): GCL − scratch {_delta(d)}; target +0.050 "
                    f"{'met' if ok else 'NOT met'}; GCL − naive sum {_delta(dn)}; scratch seed spread (sd) "
                    f"{spread:.3f}; worst paired GCL − scratch {min(d):+.3f}"
                    f"{' (worse than the spread)' if spread == spread and min(d) < -spread else ''}")
        return "\n".join(lines)

    def job_seconds(self) -> float:
        """Sum of the wall times of the jobs behind this table (two workers run side by side)."""
        keys = {j["key"] for j in self.plan.finetune.values()} | set(self.plan.pretrain)
        return float(sum(r.get("wall_s", 0.0) for k, r in self.records.by_key.items() if k in keys))

    def timing(self) -> dict:
        pt = [r["pretrain_s"] for r in self.pretrain.values() if r.get("steps_done")]
        ft = [sc["finetune_s"] for (_, t, _, _), sc in self.scores.items() if ">" not in t]
        return {"pretrain_runs": len(pt), "pretrain_s_mean": float(np.mean(pt)) if pt else None,
                "finetunes": len(ft), "finetune_s_mean": float(np.mean(ft)) if ft else None}

    def to_json(self) -> dict:
        scores = defaultdict(list)
        for (variant, target, k, seed), sc in sorted(self.scores.items()):
            scores[variant].append({"target": target, "k": k, "seed": seed, **sc})
        pre = {f"{v}|seed{s}": r for (v, s), r in self.pretrain.items()}
        return {"scores": scores, "pretrain": pre, "timing": self.timing()}

    # --- plot ----------------------------------------------------------------------------------------

    def _plot_metric(self, target: str) -> str:
        """Small organs (the harder targets) where the target has them, else the mean over classes."""
        has_small = any(x == x for v in self.variants for k in self.plan.settings.k
                        for x in self.values(v.name, target, k, "small3d").values())
        return "small3d" if has_small else "mean3d"

    def plot(self, path: Path) -> bool:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        targets = self.targets
        if not targets:
            return False
        ks = self.plan.settings.k
        fig, axes = plt.subplots(2, len(targets), figsize=(4.6 * len(targets), 8), squeeze=False)
        colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(self.variants), 2)))
        width = 0.8 / max(len(self.variants), 1)
        for col, target in enumerate(targets):
            top, bottom = axes[0, col], axes[1, col]
            metric = self._plot_metric(target)
            for i, v in enumerate(self.variants):
                means, sds = [], []
                for k in ks:
                    vals = [x for x in self.values(v.name, target, k, metric).values() if x == x]
                    means.append(np.mean(vals) if vals else np.nan)
                    sds.append(np.std(vals, ddof=1) if len(vals) > 1 else 0.0)
                top.errorbar(np.array(ks) + (i - len(self.variants) / 2) * 0.03, means, yerr=sds, marker="o",
                             ms=3, capsize=2, color=colours[i], label=v.name, lw=1.5 if v.name == "gcl" else 0.8)
                if v.trains:
                    dm, ds = [], []
                    for k in ks:
                        d = self.deltas(v, target, k, metric)
                        dm.append(np.mean(d) if d else np.nan)
                        ds.append(np.std(d, ddof=1) if len(d) > 1 else 0.0)
                    bottom.bar(np.arange(len(ks)) + (i - len(self.variants) / 2) * width, dm, width, yerr=ds,
                               color=colours[i], capsize=1.5)
            top.set_title(target)
            top.set_xlabel("annotated slices k")
            top.set_ylabel(METRICS[metric])
            top.set_xticks(ks)
            bottom.axhline(0, color="k", lw=0.8)
            bottom.axhline(0.05, color="r", lw=0.8, ls="--")
            bottom.set_xticks(range(len(ks)), [f"k={k}" for k in ks])
            bottom.set_ylabel("paired Δ vs scratch (same seed, same slices)")
        axes[0, 0].legend(fontsize=7, loc="lower right")
        fig.suptitle(f"few-shot Dice, config {self.plan.settings.name}: mean ± sd over seeds "
                     f"{self.plan.settings.seeds}; dashed red: the +0.05 target")
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return True
