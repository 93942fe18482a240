"""Few-shot Dice benchmark: does pre-training on the unlabeled pool make k annotated slices go further?

For every row (random = no pre-training, SimCLR, each usable single meta label, naive sum, GCL without
filter, GCL without mitigator, full GCL, and lever rows such as ``gcl[temperature_image=0.2]``) and seed:
pre-train once on every volume of the pool (images only) with ``api.pretrain``; then for each labelled
volume and k annotated slices (spread evenly, fixed by seed, the same for every row) fine-tune with
``api.finetune`` (the same recipe for every row) and score Dice per class on every slice not annotated
(3D over the held-out stack, and slice-aggregated); cross-volume rows score the same model on another
volume (the DICOM CT, the MR). Paired differences against scratch (same seed, same slices).

    .venv/bin/python benchmarks/fewshot_dice.py --config smoke
    nice -n 5 .venv/bin/python benchmarks/fewshot_dice.py --config cpu
    .venv/bin/python benchmarks/fewshot_dice.py --config gpu --device cuda
    .venv/bin/python benchmarks/fewshot_dice.py --config cpu --tag levers --k 1,3 --volumes mr_sm,ct_sm \\
        --methods "random,gcl,gcl[lambda_pixel=2]"

Results: benchmarks/results/fewshot_<config>[_<tag>].md / .json / .png; runs and records (resumable) in
--run-dir. The record file is shared by every configuration using the same run dir: a job already done
(same settings) is reused, never run twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, Report, be_nice  # noqa: E402
from fewshot.protocol import Plan, Records, run_plan  # noqa: E402
from fewshot.report import METRICS, Results  # noqa: E402
from fewshot.tasks import pool_folder  # noqa: E402
from fewshot.variants import PRESETS, Variant  # noqa: E402


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _list(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:  # split on commas outside [...]
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(PRESETS), default="smoke")
    p.add_argument("--methods", "--variants", dest="methods", type=_list,
                   help="comma-separated rows; single:* = every usable meta label; method[key=value,...] overrides")
    p.add_argument("--k", type=_ints)
    p.add_argument("--seeds", type=_ints)
    p.add_argument("--volumes", type=_list,
                   help="labelled volumes: mr_sm, ct_sm, itk_kmeans, icbm; none = pre-train + probe only")
    p.add_argument("--cross", type=_list, help="source>target pairs, e.g. ct_sm>dicom_ct; 'none' for none")
    p.add_argument("--size", type=int)
    p.add_argument("--base-channels", type=int)
    p.add_argument("--pretrain-steps", type=int)
    p.add_argument("--finetune-steps", type=int)
    p.add_argument("--volumes-per-batch", type=int)
    p.add_argument("--pool", help="all | body | a folder")
    p.add_argument("--device")
    p.add_argument("--workers", type=int)
    p.add_argument("--threads", type=int, help="torch threads per worker (0 = torch's default)")
    p.add_argument("--data-workers", type=int, help="pre-training batch-building processes per pre-training")
    p.add_argument("--probe-volumes", type=_list)
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument("--run-dir", default=str(Path.home() / ".cache/gcl-studio/fewshot-runs"))
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--report-only", action="store_true", help="rebuild the report from the records, run nothing")
    p.add_argument("--no-speed-patch", action="store_true",
                   help="do not convert the fine-tuning augmentation's MetaTensors to plain tensors")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--nice", type=int, default=5)
    return p.parse_args(argv)


def build_settings(args: argparse.Namespace):
    s = dataclasses.replace(PRESETS[args.config])
    for opt, fld in (("methods", "variants"), ("k", "k"), ("seeds", "seeds"), ("volumes", "volumes"),
                     ("cross", "cross"), ("size", "size"), ("base_channels", "base_channels"),
                     ("pretrain_steps", "pretrain_steps"), ("finetune_steps", "finetune_steps"),
                     ("volumes_per_batch", "volumes_per_batch"), ("pool", "pool"), ("device", "device"),
                     ("workers", "workers"), ("threads", "threads"), ("probe_volumes", "probe_volumes"),
                     ("data_workers", "data_workers")):
        val = getattr(args, opt)
        if val is not None:
            setattr(s, fld, val)
    if s.cross == ["none"]:
        s.cross = []
    if s.volumes == ["none"]:  # pre-training, diagnostics and probe only (a cheap screen)
        s.volumes = []
    if s.threads == 0:
        s.threads = None
    return s


@functools.cache
def usable_meta_labels(pool: str, cache: str, size: int) -> list[str]:
    """Scan the pool once (filling the slice cache for the workers) and list the usable meta labels."""
    from gcl_engine.config import PreprocessConfig, PretrainConfig
    from gcl_engine.training.pretrain_data import PretrainData

    cfg = PretrainConfig(folder=pool, cache=cache, preprocess=PreprocessConfig(size=size))
    return PretrainData(cfg, cache).usable_labels()


def expand(settings, plan_root: Path) -> list[Variant]:
    out: list[Variant] = []
    for spec in settings.variants:
        v = Variant.parse(spec)
        if v.method == "single:*":
            folder = pool_folder(v.get("pool", settings.pool), plan_root)
            labels = usable_meta_labels(folder, str(plan_root / "slice_cache"), int(v.get("size", settings.size)))
            out += [Variant(f"single:{name}", v.overrides) for name in labels]
        else:
            out.append(v)
    for v in list(out):  # every row needs its scratch reference
        if v.baseline() not in out:
            out.insert(0, v.baseline())
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    be_nice(args.nice)
    settings = build_settings(args)
    run_root = Path(args.run_dir).expanduser()
    run_root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    variants = expand(settings, run_root)
    for size in {int(v.get("size", settings.size)) for v in variants}:  # fill the slice cache once
        for pool in {v.get("pool", settings.pool) for v in variants if v.trains}:
            usable = usable_meta_labels(pool_folder(pool, run_root), str(run_root / "slice_cache"), size)
            print(f"pool {pool} at {size} px: usable meta labels {usable}", flush=True)
    plan = Plan(settings, variants, run_root, speed_patch=not args.no_speed_patch)
    records = Records(run_root / "records.jsonl")
    wall = 0.0 if args.report_only else run_plan(plan, records, settings.workers)
    write_report(args, settings, plan, records, None if args.report_only else wall, time.perf_counter() - t0)
    return 0


def _engine_path() -> str:
    import gcl_engine

    return str(Path(gcl_engine.__file__).parent)


def write_report(args, settings, plan: Plan, records: Records, wall: float | None, total: float) -> None:
    res = Results(plan, records)
    name = f"fewshot_{settings.name}" + (f"_{args.tag}" if args.tag else "")
    ns = argparse.Namespace(quick=False, results=args.results, no_write=args.no_write)
    config = {**dataclasses.asdict(settings), "variants_expanded": [v.name for v in plan.variants],
              "speed_patch": plan.speed_patch, "run_dir": str(plan.run_root), "argv": sys.argv[1:],
              "threads_env": os.environ.get("OMP_NUM_THREADS"), "engine_path": _engine_path(),
              "engine_commit": os.environ.get("FEWSHOT_ENGINE_COMMIT", "the working tree's (see git)")}
    rep = Report(name, f"Few-shot Dice benchmark ({settings.name}{', ' + args.tag if args.tag else ''})", ns, config)
    rep.started -= total  # the header's duration covers the whole run, not only the report
    s = settings
    rep.add(f"Config `{s.name}`: {s.size} px, U-Net base {s.base_channels}, pre-training {s.pretrain_steps} steps "
            f"(V={s.volumes_per_batch} volumes x 4 partitions x 2 views), pool `{s.pool}`; fine-tuning "
            f"{s.finetune_steps} steps, FinetuneConfig defaults otherwise; k = {s.k}; seeds {s.seeds}; device "
            f"{s.device}, {s.workers} worker(s) x {s.threads or 'default'} thread(s); engine "
            f"{config['engine_commit']} from {config['engine_path']}. "
            + (f"This run: {wall:.0f} s of jobs, {total:.0f} s in all" if wall is not None else
               "Report rebuilt from the records (--report-only)")
            + f"; the jobs of this table took {res.job_seconds():.0f} worker-seconds. "
            "Dice is 3D over the held-out slices of the volume, per class present in "
            "the support slices and in the held-out reference, mean over those classes; Δ is paired against the "
            "scratch row (same seed, same support slices): mean ± sd over seeds (wins / pairs). Cross rows "
            "(`a>b`) score the model fine-tuned on volume a on every slice of volume b.")
    for metric in ("small3d", "mean3d", "mean_slice"):
        for target in res.targets:
            if metric == "small3d" and not any(x == x for v in plan.variants for k in s.k
                                               for x in res.values(v.name, target, k, metric).values()):
                continue  # no small-organ classes (the brain maps)
            role = " (dev volume: levers are chosen here)" if target == s.dev_volume else ""
            rep.add(f"## {target}{role}: {METRICS[metric]}\n\n{res.summary_table(target, metric)}")
    rep.add("## Target check (harder targets = small organs, 3D Dice)\n\n" + res.target_check("small3d")
            + "\n\n" + res.target_check("mean3d"))
    rep.add("## Pre-training diagnostics (mean over seeds; first 10% → last 10% of the steps)\n\n"
            + res.diagnostics_table())
    rep.add("## Linear probe of the frozen encoder (1x1 conv on features at 1/4 resolution; even slices train, "
            "odd slices test; mean foreground 3D Dice)\n\n" + res.probe_table())
    for target in res.targets:
        for k in s.k:
            table = res.per_class_table(target, k)
            if table:
                rep.add(f"### Per-class 3D Dice, {target}, k={k} (mean over seeds)\n\n{table}")
    rep.data = res.to_json()
    rep.add(f"Timing: {res.timing()}")
    if not args.no_write:
        Path(args.results).mkdir(parents=True, exist_ok=True)
        png = Path(args.results) / f"{name}.png"
        if res.plot(png):
            print(f"wrote {png}")
    rep.write()


if __name__ == "__main__":
    sys.exit(main())
