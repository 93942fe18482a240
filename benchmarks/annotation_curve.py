"""Dice per painted slice: a simulated annotator paints one slice per round (rounds 1..10) and every row updates.

Rows (benchmarks/annotation/rows.py): contour interpolation between the painted slices (ITK's
MorphologicalContourInterpolator, what 3D Slicer's "Fill between slices" runs: the anchor; and ours), an
ilastik-style random forest, the U-Net from scratch and from GCL pre-training on evenly spaced slices, the
product's default recipe with its own slice suggestions, and the recipe with scribbles instead of full slices.
U-Net rows go through the engine's public API as the GUI does: each round one ``api.finetune`` continuing
from the previous round's model, then a whole-volume ``Segmenter.predict``. Score: Dice on every slice not
painted, per class, mean over the classes of the reference; 3 seeds; paired differences.

    bash benchmarks/fetch_data.sh    # once
    nice -n 5 .venv/bin/python benchmarks/annotation_curve.py --quick                 # pipeline check, minutes
    nice -n 5 .venv/bin/python benchmarks/annotation_curve.py                         # every row, task, seed
    nice -n 5 .venv/bin/python benchmarks/annotation_curve.py --tag levers --tasks ct_sm \\
        --rows "unet_scratch,unet_scratch[steps=160]"

Results: benchmarks/results/annotation_curve[_<tag>].md / .json / .png; resumable records in --run-dir
(a job already recorded with the same settings is reused by any later run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from annotation.report import METRICS, Curves, per_class_table, plot, targets_table  # noqa: E402
from annotation.rows import BASE_ROWS, PREDICT_VARIANTS, parse_row  # noqa: E402
from common import RESULTS, Report, be_nice  # noqa: E402

DEFAULT_ROWS = "interp_mci,interp_sdf,forest,unet_scratch,unet_recipe_net,unet_gcl,recipe,recipe_scribbles"
DEFAULT_TASKS = "ct_sm,mr_sm,itk_kmeans,icbm"
# the GUI's "quick (CPU)" pre-training preset; size, width and depth follow the row's network
PRETRAIN = {"steps": 150, "size": 64, "base_channels": 8, "levels": 4}


def _list(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*out, cur.strip()] if cur.strip() else out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=_list, default=_list(DEFAULT_ROWS), help=f"named rows: {', '.join(BASE_ROWS)}")
    p.add_argument("--tasks", type=_list, default=_list(DEFAULT_TASKS))
    p.add_argument("--seeds", type=lambda t: [int(x) for x in t.split(",")], default=[0, 1, 2])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="2 rounds, 1 seed, the small CT: a pipeline check")
    p.add_argument("--tag", default="")
    p.add_argument("--run-dir", default=str(Path.home() / ".cache/gcl-studio/annotation-runs"))
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--nice", type=int, default=5)
    p.add_argument("--recipe", default="recipe", help="the row the targets are read for")
    p.add_argument("--report-only", action="store_true", help="write the report from the records so far, run nothing")
    p.add_argument("--engine-digest", help="report records of an engine that is no longer the one imported "
                                           "(the digest a record key was made with; see the report's config)")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.seeds, args.tasks = 2, [0], ["ct_sm"]
    return args


def _key(payload: dict) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


# The engine files a row's results depend on (None: all of them): a changed file never reuses old records
ENGINE_FILES = {"forest": (), "interp": ("data/interpolation.py", "data/painted.py"), "unet": None}


FORCED_DIGEST: str | None = None


def _engine_commit(kind: str | None = "unet") -> str:
    """A digest of the engine's source as imported (the part a row of this kind depends on)."""
    import gcl_engine

    if FORCED_DIGEST and ENGINE_FILES.get(kind or "unet") is None:
        return FORCED_DIGEST
    root = Path(gcl_engine.__file__).parent
    files = ENGINE_FILES.get(kind or "unet")
    paths = sorted(root.rglob("*.py")) if files is None else [root / f for f in files]
    digest = hashlib.sha1()
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def pretrain_job(seed: int, run_dir: Path, row, pool: str = "all") -> dict:
    """One pre-training at the row's network shape; ``pool``: "all" (every fetched volume, the targets among
    them) or a task's name (that scan alone: pre-training on the very scan being segmented)."""
    shape = {k: row.get(k, PRETRAIN[k]) for k in ("size", "base_channels", "levels")}
    spec = {"method": "gcl", "seed": seed, **PRETRAIN, **shape, **row.pretrain_overrides, "pool": pool}
    key = "pt_" + _key(spec)
    return {"kind": "pretrain", "key": key, "spec": spec, "out": str(run_dir / "pretrain" / key),
            "cache": str(run_dir / "slice_cache")}


def run_pretrain(job: dict) -> dict:
    from fewshot.tasks import BENCH_DATA

    from gcl_engine import api

    s = dict(job["spec"])
    pool = s.pop("pool")
    folder = BENCH_DATA / "volumes"
    if pool != "all":
        from fewshot.tasks import load_task

        folder = Path(job["out"]) / "pool"
        folder.mkdir(parents=True, exist_ok=True)
        image = Path(load_task(pool).image)
        if not (folder / image.name).exists():
            (folder / image.name).symlink_to(image)
    cfg = api.PretrainConfig(
        folder=str(folder), out=job["out"], cache=job["cache"], method=s.pop("method"),
        steps=s.pop("steps"), seed=s.pop("seed"), threads=1, device="cpu", checkpoint_every=10_000,
        preprocess=api.PreprocessConfig(size=s.pop("size")),
        model=api.ModelConfig(base_channels=s.pop("base_channels"), levels=s.pop("levels")), **s)
    t0 = time.perf_counter()
    res = api.pretrain(cfg)
    return {"kind": "pretrain", "key": job["key"], "checkpoint": res.checkpoint, "steps": res.steps_done,
            "seconds": round(time.perf_counter() - t0, 1)}


def worker_init() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def run_job(job: dict) -> dict:
    t0 = time.perf_counter()
    if job["kind"] == "pretrain":
        out = run_pretrain(job)
    else:
        from annotation.curve import run_curve

        out = run_curve(job)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


class Records:
    def __init__(self, path: Path):
        self.path, self.by_key = path, {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                    self.by_key[rec["key"]] = rec
                except (json.JSONDecodeError, KeyError):
                    continue

    def add(self, rec: dict) -> None:
        self.by_key[rec["key"]] = rec
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")


def plan(args: argparse.Namespace, run_dir: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    pretrains, curves = {}, {}
    for row_text in args.rows:
        row = parse_row(row_text)
        for seed in args.seeds:
            for task in args.tasks:
                pt_key = None
                if row.get("pretrain"):
                    pool = task if row.get("pool") == "target" else "all"
                    job = pretrain_job(seed, run_dir, row, pool)
                    pretrains[job["key"]] = job
                    pt_key = job["key"]
                ident = {"row": row.settings, "task": task, "seed": seed, "rounds": args.rounds, "pretrain": pt_key,
                         "engine": _engine_commit(row.get("kind"))}
                key = "curve_" + _key(ident)
                curves[key] = {"kind": "curve", "key": key, "row": row_text, "task": task, "seed": seed,
                               "rounds": args.rounds, "pretrain_key": pt_key, "work_dir": str(run_dir / "work" / key)}
    return pretrains, curves


def execute(pretrains: dict, curves: dict, records: Records, workers: int) -> None:
    todo = [j for j in pretrains.values() if j["key"] not in records.by_key]
    todo += [j for j in curves.values() if j["key"] not in records.by_key]
    print(f"[annotation] {len(todo)} job(s) to run, {len(pretrains) + len(curves) - len(todo)} recorded", flush=True)
    ctx = mp.get_context("spawn")
    t0 = time.perf_counter()
    # one job per process: a crash or leak (ITK and torch share a process badly) stays with its job
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=worker_init, max_tasks_per_child=1) as pool:
        inflight = {}
        while todo or inflight:
            ready = [j for j in todo if j["kind"] == "pretrain" or not j["pretrain_key"]
                     or j["pretrain_key"] in records.by_key]
            while ready and len(inflight) < workers:
                job = ready.pop(0)
                todo.remove(job)
                if job["kind"] == "curve" and job["pretrain_key"]:
                    job = {**job, "checkpoint": records.by_key[job["pretrain_key"]]["checkpoint"]}
                inflight[pool.submit(run_job, job)] = job
            if not inflight:
                raise RuntimeError("jobs wait on a pre-training that failed")
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for fut in done:
                job = inflight.pop(fut)
                try:
                    rec = fut.result()
                except Exception as exc:  # one failed job must not lose the others
                    print(f"[annotation] FAILED {job['key']} {job.get('row')} {job.get('task')}: {exc!r}", flush=True)
                    todo = [j for j in todo if j.get("pretrain_key") != job["key"]]
                    continue
                records.add(rec)
                last = rec.get("rounds", [{}])[-1] if rec["kind"] == "curve" else {}
                print(f"[annotation] {time.perf_counter() - t0:6.0f} s  {rec['kind']} {rec.get('row', '')} "
                      f"{rec.get('task', '')} seed {rec.get('seed', '')}: last round {last.get('mean', '')} "
                      f"({rec['wall_s']} s)", flush=True)


def expand_variants(recs: list[dict], rows: list[str]) -> tuple[list[dict], list[str]]:
    """Prediction-time variants of a row's rounds as rows of their own, named ``row~variant``."""
    out, names = list(recs), list(rows)
    for rec in recs:
        variant_names = sorted({v for rd in rec["rounds"] for v in rd.get("variants", {})})
        for v in variant_names:
            rounds = [{**{k: x for k, x in rd.items() if k != "variants"}, **rd["variants"][v]}
                      for rd in rec["rounds"] if v in rd.get("variants", {})]
            name = f"{rec['row']}~{v}"
            out.append({**rec, "row": name, "rounds": rounds})
            if name not in names:
                names.insert(names.index(rec["row"]) + 1 + sum(n.startswith(rec["row"] + "~") for n in names), name)
    return out, names


def row_settings(name: str) -> dict:
    """A row's settings; a prediction-time variant (``row~variant``) adds the prediction settings it scored."""
    base, _, variant = name.partition("~")
    settings = dict(parse_row(base).settings)
    if variant:
        settings["scored_with"] = PREDICT_VARIANTS[variant]
    return settings


def report(args, pretrains: dict, curves: dict, records: Records) -> None:
    recs, rows = expand_variants([records.by_key[k] for k in curves if k in records.by_key], args.rows)
    args.rows = rows
    c = Curves(recs, args.rows, args.tasks, args.rounds)
    name = "annotation_curve" + (f"_{args.tag}" if args.tag else "") + ("_quick" if args.quick else "")
    rep = Report(name, "Dice per painted slice (simulated annotator)", argparse.Namespace(
        quick=False, results=args.results, no_write=args.no_write),
        {"rows": {r: row_settings(r) for r in args.rows}, "tasks": args.tasks, "seeds": args.seeds,
         "rounds": args.rounds, "pretrain": PRETRAIN, "engine": _engine_commit()})
    rep.add("Each round the robot paints one more slice from the reference (order: `even` = nested farthest-point "
            "inside the foreground range, `suggest` = the row's own ranking); Dice on every slice not painted, "
            "mean over the reference's classes; mean ± sd over seeds " + ", ".join(map(str, args.seeds)) + ".")
    rep.add("Seeds recorded per row and task (mean ± sd and paired differences use what is there):\n\n"
            + c.seed_table())
    recipe = args.recipe
    anchor = "interp_mci" if "interp_mci" in args.rows else args.rows[0]
    scratch = "unet_scratch" if "unet_scratch" in args.rows else anchor
    scrib = "recipe_scribbles" if "recipe_scribbles" in args.rows else None
    gcl = "unet_gcl" if "unet_gcl" in args.rows else None
    if recipe in args.rows:
        rep.add(f"## Targets ({recipe} against {anchor} and {scratch}; paired over seeds: mean ± sd (wins))\n\n"
                + targets_table(c, recipe, anchor, scratch, scrib, gcl))
    for metric in ("mean", "small", "slice_mean"):
        for task in c.tasks_with(metric):
            rep.add(f"## {task}: {METRICS[metric]}\n\n" + c.curve_table(task, metric))
    rep.add("## Wall time per round (s): mean (max) over rounds and seeds, one CPU thread per job\n\n" + c.time_table())
    if scrib:
        rep.add(f"Scribbles cover {100 * c.coverage(scrib):.1f}% of a painted slice's pixels on average.")
    for task in args.tasks:
        rep.add(f"## {task}: per class at k=3\n\n" + per_class_table(c, task, args.rows, min(3, args.rounds)))
    if pretrains:
        rep.add("Pre-training runs: " + ", ".join(
            f"{k}: {records.by_key[k]['steps']} steps in {records.by_key[k]['seconds']} s"
            for k in pretrains if k in records.by_key))
    rep.data = {"records": recs}
    rep.write()
    if not args.no_write:
        plot(c, Path(args.results) / f"{name}.png")


def main(argv=None) -> int:
    global FORCED_DIGEST
    args = parse_args(argv)
    FORCED_DIGEST = args.engine_digest
    be_nice(args.nice)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    records = Records(run_dir / "records.jsonl")
    pretrains, curves = plan(args, run_dir)
    if not args.report_only:
        execute(pretrains, curves, records, args.workers)
    report(args, pretrains, curves, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
