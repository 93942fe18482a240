"""Pre-training step speed and memory per method, the data pipeline alone, and exact-vs-fast Mitigator agreement
(issue 3).

Children build the real run's objects (``PretrainData`` over the benchmark volumes' slice cache,
``GCLPretrainNet``, AdamW, ``plan_method``) and repeat what ``pretrain._Loop._train_step`` does per step:
``PretrainData.batch`` then ``gcl_step`` (forward, losses, Mitigator, backward) + gradient clipping +
``optimizer.step``; 'train' times the second part alone, 'loop' both.

  * speed: ONE child per size holds every variant (own net and optimizer each) and runs rounds; a round draws one
    batch and runs one train step of every variant on it, in an order rotated every round, so a change of machine
    load hits all variants alike. The first round is a warm-up. Per variant: median wall time and CPU time
    (``time.process_time``, all threads) per step; ratios to naive_sum are taken per round, then the median.
  * memory: one child per (variant, size), ``--warmup`` + 1 steps, peak RSS (the child's VmHWM) and, on CUDA,
    ``torch.cuda.max_memory_allocated``.
  * aux: the data pipeline alone (``PretrainData.batch(step, 0, 1)``, memory map -> warp -> intensity
    augmentation), and the cosine between the flattened encoder ``.grad`` that ``gcl_step`` leaves with
    ``mitigator=exact`` and with ``mitigator=fast`` on the same batch, weights and generator seed (plus each
    against ``gcl_no_mitigator``, the same losses summed without surgery, for scale).
Throughput is in views/s: each base slice is seen in two augmented views, a view is one 2D image through the
network (the loop's ``slices_per_s`` metric counts the same).

    nice -n 5 .venv/bin/python benchmarks/pretrain_speed.py [--quick] [--sizes 64,128] [--threads 1] [--device cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import Report, base_parser, be_nice, bench_data, child_reply, markdown_table, median, rss_mb, run_child

# row name -> (method, mitigator, gradient filter); (A) / (B): Gradient Filter variant
VARIANTS = {
    "simclr": ("simclr", "fast", "none"),
    "naive_sum": ("naive_sum", "fast", "none"),
    "gcl exact (A)": ("gcl", "exact", "A"),
    "gcl fast (A)": ("gcl", "fast", "A"),
    "gcl_no_filter (fast)": ("gcl_no_filter", "fast", "none"),
    "gcl fast (B)": ("gcl", "fast", "B"),
    "gcl_no_mitigator (A)": ("gcl_no_mitigator", "fast", "A"),
}
DEFAULT_VARIANTS = list(VARIANTS)


def _config(spec: dict, method: str, mitigator: str, gradient_filter: str):
    from gcl_engine import api

    return api.PretrainConfig(
        folder=spec["data"], out=spec["out"], cache=spec["cache"], method=method, mitigator=mitigator,
        gradient_filter=gradient_filter, volumes_per_batch=spec["volumes_per_batch"],
        position_partitions=spec["partitions"], steps=1000, device=spec["device"], seed=spec["seed"],
        threads=spec.get("threads"), preprocess=api.PreprocessConfig(size=spec["size"]),
        model=api.ModelConfig(base_channels=spec["base_channels"], levels=spec["levels"]))


def _setup(spec: dict, cfg):
    import torch

    from gcl_engine.runtime import configure_cpu_threads, seed_everything, select_device
    from gcl_engine.training.pretrain_data import PretrainData

    device = select_device(cfg.device)
    if device.type == "cpu":
        configure_cpu_threads(cfg.threads)
    seed_everything(cfg.seed)
    with open(spec["scan_pickle"], "rb") as fh:
        scan = pickle.load(fh)
    data = PretrainData(cfg, spec["cache"], scan=scan)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    return torch, device, data, sync


def _autocast(torch, device, cfg):
    import contextlib

    def autocast():
        if device.type == "cuda" and cfg.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()
    return autocast


def _inputs(torch, device, batch, plan):
    from gcl_engine.training.gcl_step import StepInputs

    views = batch.views.to(device)
    if device.type == "cuda":
        views = views.contiguous(memory_format=torch.channels_last)
    return StepInputs(views, batch.theta, {k: batch.labels[k] for k in plan.image_labels})


def _make_runner(torch, device, cfg, usable, variant):
    from gcl_engine.models import GCLPretrainNet
    from gcl_engine.training.methods import plan_method

    method, mitigator, gfilter = VARIANTS[variant]
    run_cfg = dataclasses.replace(cfg, method=method, mitigator=mitigator, gradient_filter=gfilter)
    torch.manual_seed(cfg.seed)
    net = GCLPretrainNet(cfg.model).to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return run_cfg, plan_method(method, usable, gfilter), net, opt


def _train_step(torch, device, runner, batch, step, autocast):
    """The loop's step after the batch: inputs to the device, gcl_step, clip, optimizer step; its metrics."""
    from gcl_engine.training.distributed import DistContext
    from gcl_engine.training.gcl_step import gcl_step

    run_cfg, plan, net, opt = runner
    inputs = _inputs(torch, device, batch, plan)
    gen = torch.Generator().manual_seed(run_cfg.seed * 1_000_003 + step)
    opt.zero_grad(set_to_none=True)
    out = gcl_step(net, net.encoder, inputs, run_cfg, plan, DistContext(), gen, autocast)
    torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
    opt.step()
    return out.metrics


def child_speed(spec: dict) -> None:
    """Every variant in one process, interleaved rounds (see the module docstring)."""
    cfg = _config(spec, "gcl", "fast", "A")
    torch, device, data, sync = _setup(spec, cfg)
    usable = data.usable_labels()
    autocast = _autocast(torch, device, cfg)
    names = list(spec["variants"])
    runners = {name: _make_runner(torch, device, cfg, usable, name) for name in names}
    res = {name: {"wall": [], "cpu": [], "labels": list(runners[name][1].image_labels)} for name in names}
    data_times, n_views = [], 0
    for rnd in range(spec["warmup"] + spec["rounds"]):
        t0 = time.perf_counter()
        batch = data.batch(rnd, 0, 1, cfg.volumes_per_batch)
        t_data = time.perf_counter() - t0
        n_views = 2 * batch.n_slices
        k = rnd % len(names)
        for name in names[k:] + names[:k]:
            sync()
            c0, t0 = time.process_time(), time.perf_counter()
            _train_step(torch, device, runners[name], batch, rnd, autocast)
            sync()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if rnd >= spec["warmup"]:
                res[name]["wall"].append(wall)
                res[name]["cpu"].append(cpu)
        if rnd >= spec["warmup"]:
            data_times.append(t_data)
    child_reply({"variants": res, "data_times": data_times, "views": n_views, "threads": torch.get_num_threads(),
                 "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None})


def child_memory(spec: dict) -> None:
    """Peak memory of one variant over ``warmup`` + 1 steps, in a process of its own."""
    cfg = _config(spec, "gcl", "fast", "A")
    torch, device, data, sync = _setup(spec, cfg)
    runner = _make_runner(torch, device, cfg, data.usable_labels(), spec["variant"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    autocast = _autocast(torch, device, cfg)
    rss_before = rss_mb()
    metrics: dict = {}
    for step in range(spec["warmup"] + 1):
        metrics = _train_step(torch, device, runner, data.batch(step, 0, 1, cfg.volumes_per_batch), step, autocast)
        sync()
    reply = {"rss_before_step_mb": rss_before, "loss": metrics.get("loss"),
             "kept_share": metrics.get("pixel/kept_share")}
    if device.type == "cuda":
        reply["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    child_reply(reply)


def _encoder_grad(torch, net):
    parts = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=p.device)
             for p in net.encoder.parameters()]
    return torch.cat(parts).double().cpu()


def child_aux(spec: dict) -> None:
    """The data pipeline alone; then the exact / fast / plain encoder updates on the same batches."""
    cfg = _config(spec, "gcl", "fast", "A")
    torch, device, data, sync = _setup(spec, cfg)
    from gcl_engine.models import GCLPretrainNet
    from gcl_engine.training.distributed import DistContext
    from gcl_engine.training.gcl_step import gcl_step
    from gcl_engine.training.methods import plan_method

    data.batch(0, 0, 1)  # warm-up
    times, n_views = [], 0
    for step in range(1, 1 + spec["data_steps"]):
        t0 = time.perf_counter()
        batch = data.batch(step, 0, 1)
        times.append(time.perf_counter() - t0)
        n_views = 2 * batch.n_slices
    usable = data.usable_labels()
    autocast = _autocast(torch, device, cfg)
    plan_mit = plan_method("gcl", usable, "A")
    plan_sum = plan_method("gcl_no_mitigator", usable, "A")
    torch.manual_seed(cfg.seed)
    net = GCLPretrainNet(cfg.model).to(device)
    rows = []
    for step in range(spec["cos_batches"]):
        inputs = _inputs(torch, device, data.batch(1000 + step, 0, 1), plan_mit)
        grads, conflicts = {}, {}
        for name, plan, mitigator in (("exact", plan_mit, "exact"), ("fast", plan_mit, "fast"),
                                      ("plain", plan_sum, "fast")):
            run_cfg = dataclasses.replace(cfg, mitigator=mitigator, method=plan.name)
            net.zero_grad(set_to_none=True)
            out = gcl_step(net, net.encoder, inputs, run_cfg, plan, DistContext(),
                           torch.Generator().manual_seed(12345 + step), autocast)
            grads[name] = _encoder_grad(torch, net)
            conflicts[name] = {k: v for k, v in out.metrics.items() if k.endswith("conflict_rate")}
        cos = torch.nn.functional.cosine_similarity
        rows.append({"exact~fast": float(cos(grads["exact"], grads["fast"], dim=0)),
                     "exact~plain": float(cos(grads["exact"], grads["plain"], dim=0)),
                     "fast~plain": float(cos(grads["fast"], grads["plain"], dim=0)),
                     "norm_fast/exact": float(grads["fast"].norm() / grads["exact"].norm()),
                     "conflicts": conflicts})
    child_reply({"data_times": times, "views": n_views, "labels": list(plan_mit.image_labels), "cosines": rows,
                 "encoder_params": int(sum(p.numel() for p in net.encoder.parameters()))})


def _scan(data: Path, cache: Path, size: int, pickle_path: Path) -> dict:
    from gcl_engine import api

    t0 = time.perf_counter()
    scan = api.scan_folder(data, cache=cache, preprocess=api.PreprocessConfig(size=size))
    with open(pickle_path, "wb") as fh:
        pickle.dump(scan, fh)
    return {"seconds": time.perf_counter() - t0, "volumes": len(scan.volumes),
            "slices": sum(v.n_slices for v in scan.volumes)}


def _spread(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--data", help="benchmark volumes folder (default: the fetch_data.sh cache)")
    p.add_argument("--sizes", default="64,128")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma-separated, of {list(VARIANTS)}")
    p.add_argument("--rounds", type=int, default=3, help="timed interleaved rounds (one step of every variant)")
    p.add_argument("--warmup", type=int, default=1, help="untimed first rounds / steps")
    p.add_argument("--no-memory", action="store_true", help="skip the per-variant peak-memory children")
    p.add_argument("--data-steps", type=int, default=20, help="batches timed for the data pipeline alone")
    p.add_argument("--cos-batches", type=int, default=2, help="batches for the exact-vs-fast cosine")
    p.add_argument("--base-channels", type=int, default=16)
    p.add_argument("--levels", type=int, default=5)
    p.add_argument("--volumes-per-batch", type=int, default=4)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: the engine's choice, all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="", help="suffix of the result file names")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    be_nice(args.nice)
    if args.child:
        spec = json.loads(args.child)
        {"speed": child_speed, "memory": child_memory, "aux": child_aux}[spec["kind"]](spec)
        return
    if args.quick:
        args.sizes, args.rounds, args.data_steps, args.cos_batches = "64", 1, 5, 1
        args.variants = "naive_sum,gcl exact (A),gcl fast (A)"
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}: choose from {list(VARIANTS)}")
    if "naive_sum" not in variants:
        variants.insert(0, "naive_sum")  # the reference of every ratio
    sizes = [int(s) for s in args.sizes.split(",")]
    data = bench_data(args.data)
    config = {k: getattr(args, k) for k in ("sizes", "rounds", "warmup", "no_memory", "data_steps", "cos_batches",
                                            "base_channels", "levels", "volumes_per_batch", "partitions", "device",
                                            "threads", "seed")}
    config["variants"], config["data"] = variants, str(data)
    name = "pretrain_speed" + ("_cuda" if args.device.startswith("cuda") else "") + (f"_{args.tag}" if args.tag
                                                                                      else "")
    report = Report(name, f"Pre-training step speed ({args.device}, issue 3)", args, config)
    tmp = Path(tempfile.mkdtemp(prefix="gcl-bench-pretrain-"))
    speed_rows, mem_rows, data_rows, cos_rows, ratio_lines = [], [], [], [], []
    threads = "?"
    try:
        for size in sizes:
            cache, pkl = tmp / f"cache{size}", tmp / f"scan{size}.pkl"
            scan_info = _scan(data, cache, size, pkl)
            spec = {"data": str(data), "out": str(tmp / "run"), "cache": str(cache), "scan_pickle": str(pkl),
                    "size": size, "base_channels": args.base_channels, "levels": args.levels,
                    "volumes_per_batch": args.volumes_per_batch, "partitions": args.partitions,
                    "device": args.device, "seed": args.seed, "threads": args.threads, "warmup": args.warmup,
                    "rounds": args.rounds, "data_steps": args.data_steps, "cos_batches": args.cos_batches}

            def child(kind: str, spec=spec, **extra) -> dict:
                return run_child([sys.executable, __file__, "--nice", str(args.nice),
                                  "--child", json.dumps({**spec, "kind": kind, **extra})])

            speed = child("speed", variants=variants)
            threads = speed["threads"]
            res, naive = speed["variants"], speed["variants"]["naive_sum"]
            d_round = median(speed["data_times"])
            for v in variants:
                r = res[v]
                wall, cpu = median(r["wall"]), median(r["cpu"])
                per_round = [a / b for a, b in zip(r["wall"], naive["wall"], strict=True)]
                per_round_cpu = [a / b for a, b in zip(r["cpu"], naive["cpu"], strict=True)]
                speed_rows.append([size, v, ",".join(r["labels"]), speed["views"] / wall,
                                   speed["views"] / (wall + d_round), wall * 1000, cpu * 1000, median(per_round),
                                   median(per_round_cpu), _spread(per_round)])
                print(f"  {size} px {v}: {speed['views'] / wall:.1f} views/s, {median(per_round):.2f}x naive_sum",
                      flush=True)
            mem = {}
            if not args.no_memory:
                for v in variants:
                    m = child("memory", variant=v)
                    mem[v] = m
                    mem_rows.append([size, v, m["rss_before_step_mb"], m["peak_rss_mb"],
                                     m["peak_rss_mb"] - m["rss_before_step_mb"], m.get("cuda_peak_mb")])
            aux = child("aux")
            d = median(aux["data_times"])
            fastest = min(median(r["wall"]) for r in res.values())
            data_rows.append([size, aux["views"], aux["views"] / d, d * 1000, fastest * 1000,
                              "yes" if d < fastest else "NO"])
            for i, c in enumerate(aux["cosines"]):
                conf = c["conflicts"]
                cos_rows.append([size, i, c["exact~fast"], c["exact~plain"], c["fast~plain"], c["norm_fast/exact"],
                                 conf["exact"].get("img/conflict_rate"), conf["exact"].get("pix/conflict_rate"),
                                 conf["fast"].get("img/conflict_rate"), conf["fast"].get("pix/conflict_rate")])
            for v in ("gcl fast (A)", "gcl fast (B)", "gcl_no_filter (fast)"):
                if v in res:
                    wall_r = median([a / b for a, b in zip(res[v]["wall"], naive["wall"], strict=True)])
                    cpu_r = median([a / b for a, b in zip(res[v]["cpu"], naive["cpu"], strict=True)])
                    ok = "met" if max(wall_r, cpu_r) <= 1.3 else ("NOT met" if min(wall_r, cpu_r) > 1.3 else
                                                                  "unclear (wall and CPU disagree)")
                    ratio_lines.append(f"- {size} px: {v} / naive_sum = {wall_r:.2f}x wall, {cpu_r:.2f}x CPU time: "
                                       f"target <= 1.3x {ok}")
            if "gcl fast (A)" in res and "gcl_no_mitigator (A)" in res:
                a, b = res["gcl fast (A)"], res["gcl_no_mitigator (A)"]
                wall_r = median([x / y for x, y in zip(a["wall"], b["wall"], strict=True)])
                cpu_r = median([x / y for x, y in zip(a["cpu"], b["cpu"], strict=True)])
                ratio_lines.append(f"- {size} px: gcl fast (A) / gcl_no_mitigator (A) (same losses, plain sum) = "
                                   f"{wall_r:.2f}x wall, {cpu_r:.2f}x CPU time: the fast Mitigator's own cost")
            report.data[str(size)] = {"scan": scan_info, "speed": speed, "memory": mem, "aux": aux}
        cuda = args.device.startswith("cuda")
        report.add(f"Benchmark volumes ({report.data[str(sizes[0])]['scan']['volumes']} volumes), U-Net base "
                   f"{args.base_channels}, {args.levels} levels, V={args.volumes_per_batch} volumes x "
                   f"{args.partitions} partitions = {args.volumes_per_batch * args.partitions} slices, 2 views "
                   f"each; AdamW; {threads} torch thread(s)"
                   + (", bf16 autocast and channels-last on CUDA" if cuda else ", fp32 on CPU")
                   + f". Speed: every variant in one process, {args.warmup} warm-up + {args.rounds} interleaved "
                   f"rounds (one step of each variant per round on the same batch, order rotated), median. "
                   f"'train' = gcl_step + clip + optimizer step; 'loop' adds the round's data batch (what the "
                   f"loop's slices_per_s sees); CPU = process CPU time over all threads; the ratios to naive_sum are "
                   f"per round, then the median (wall and CPU).\n")
        report.add(markdown_table(["px", "variant", "meta labels", "train views/s", "loop views/s", "train ms/step",
                                   "CPU ms/step", "x naive (wall)", "x naive (CPU)", "per-round x naive (wall)"],
                                  speed_rows))
        report.add("The fast GCL step against naive_sum (target <= 1.3x; naive_sum has no pixel branch, "
                   "gcl_no_mitigator has gcl's losses without the surgery):\n\n" + "\n".join(ratio_lines) + "\n")
        if mem_rows:
            report.add(f"Peak memory, one child process per row ({args.warmup} + 1 steps); peak = the child's VmHWM "
                       f"(Python, torch, the model, the data's memory maps included); 'step +' = peak minus the RSS "
                       f"just before the first step:\n")
            report.add(markdown_table(["px", "variant", "RSS before MiB", "peak RSS MiB", "step + MiB",
                                       "CUDA peak MiB"], mem_rows, digits=1))
        report.add("Data pipeline alone (`PretrainData.batch(step, 0, 1)`: memory-mapped cache, warp, intensity "
                   "augmentation, on the CPU, one process), against the fastest train step of the same size:\n")
        report.add(markdown_table(["px", "views", "data views/s", "data ms/batch", "fastest train ms/step",
                                   "data faster than training"], data_rows, digits=1))
        report.add("Exact vs fast Mitigator on the real model: cosine of the flattened encoder `.grad` left by "
                   "`gcl_step` (method gcl, filter A) on the same batch, weights and generator seed; 'plain' is "
                   "gcl_no_mitigator (the same losses summed, no surgery), for scale. Conflict rates are the "
                   "share of meta-label pairs with a negative dot product, on the flattened encoder parameter "
                   "gradients (exact) or per sample on the feature gradients (fast), from gcl_step's metrics:\n")
        report.add(markdown_table(["px", "batch", "cos exact~fast", "cos exact~plain", "cos fast~plain",
                                   "|fast| / |exact|", "exact img conflicts", "exact pix conflicts",
                                   "fast img conflicts", "fast pix conflicts"], cos_rows, digits=3))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report.write()


if __name__ == "__main__":
    main()
