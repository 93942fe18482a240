"""Pre-training step speed and memory per method, the data pipeline alone, and exact-vs-fast Mitigator agreement
(issue 3).

Every (method, size) runs in its own child process, so its peak RSS is its own. A child builds the real run's
objects (``PretrainData`` over the benchmark volumes' slice cache, ``GCLPretrainNet``, AdamW, ``plan_method``) and
repeats what ``pretrain._Loop._train_step`` does per step, timing two parts separately:
  * data: ``PretrainData.batch(step, 0, 1)`` (memory-mapped cache -> affine warp + intensity augmentation);
  * train: ``gcl_step`` (forward, losses, Mitigator, backward) + gradient clipping + ``optimizer.step``.
The first ``--warmup`` steps are not timed. Throughput is in views/s: each base slice is seen in two augmented
views, and a view is one 2D slice image through the network (the loop's ``slices_per_s`` metric counts the same).

A third kind of child measures the data pipeline alone over more steps, and the cosine between the encoder
``.grad`` vectors that ``gcl_step`` leaves with ``mitigator=exact`` and with ``mitigator=fast`` on the same batch,
weights and generator seed (plus each against the un-mitigated plain sum, ``gcl_no_mitigator``, for scale).

    nice -n 5 .venv/bin/python benchmarks/pretrain_speed.py [--quick] [--sizes 64,128] [--device cuda]
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

# row name -> (method, mitigator, gradient filter)
VARIANTS = {
    "simclr": ("simclr", "fast", "none"),
    "naive_sum": ("naive_sum", "fast", "none"),
    "gcl exact (filter A)": ("gcl", "exact", "A"),
    "gcl fast (filter A)": ("gcl", "fast", "A"),
    "gcl_no_filter (fast)": ("gcl_no_filter", "fast", "none"),
    "gcl fast, filter B": ("gcl", "fast", "B"),
    "gcl_no_mitigator (filter A)": ("gcl_no_mitigator", "fast", "A"),
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


def child_steps(spec: dict) -> None:
    """Time ``warmup + steps`` training steps of one variant (mirrors pretrain._Loop._train_step)."""
    method, mitigator, gfilter = VARIANTS[spec["variant"]]
    cfg = _config(spec, method, mitigator, gfilter)
    torch, device, data, sync = _setup(spec, cfg)
    from gcl_engine.models import GCLPretrainNet
    from gcl_engine.training.distributed import DistContext
    from gcl_engine.training.gcl_step import gcl_step
    from gcl_engine.training.methods import plan_method

    plan = plan_method(cfg.method, data.usable_labels(), cfg.gradient_filter)
    net = GCLPretrainNet(cfg.model).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats()
    autocast = _autocast(torch, device, cfg)
    rss_before = rss_mb()
    t_data, t_train, t_cpu, n_views, metrics = [], [], [], 0, {}
    for step in range(spec["warmup"] + spec["steps"]):
        c0 = time.process_time()
        t0 = time.perf_counter()
        batch = data.batch(step, 0, 1, cfg.volumes_per_batch)
        t1 = time.perf_counter()
        inputs = _inputs(torch, device, batch, plan)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        opt.zero_grad(set_to_none=True)
        out = gcl_step(net, net.encoder, inputs, cfg, plan, DistContext(), gen, autocast)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        sync()
        t2 = time.perf_counter()
        if step >= spec["warmup"]:
            t_data.append(t1 - t0)
            t_train.append(t2 - t1)
            t_cpu.append(time.process_time() - c0)
        n_views, metrics = 2 * batch.n_slices, out.metrics
    reply = {"variant": spec["variant"], "views": n_views, "labels": list(plan.image_labels), "pixel": plan.pixel,
             "t_data": t_data, "t_train": t_train, "t_cpu": t_cpu, "rss_before_step_mb": rss_before,
             "loss": metrics.get("loss"), "kept_share": metrics.get("pixel/kept_share")}
    if device.type == "cuda":
        reply["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        reply["gpu"] = torch.cuda.get_device_name(0)
    reply["threads"] = torch.get_num_threads()
    child_reply(reply)


def _encoder_grad(torch, net):
    parts = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=p.device)
             for p in net.encoder.parameters()]
    return torch.cat(parts).double().cpu()


RATIO_VARIANTS = ("naive_sum", "gcl fast (filter A)", "gcl_no_mitigator (filter A)")


def child_aux(spec: dict) -> None:
    """Data pipeline alone; interleaved step times (load-robust ratios); exact / fast / plain encoder updates."""
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

    # interleaved: one step of each variant in turn on the same batch, order rotated every round, so a change
    # of machine load hits all variants alike
    runners = {}
    for name in RATIO_VARIANTS:
        method, mitigator, gfilter = VARIANTS[name]
        run_cfg = dataclasses.replace(cfg, method=method, mitigator=mitigator, gradient_filter=gfilter)
        torch.manual_seed(cfg.seed)
        net = GCLPretrainNet(cfg.model).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        runners[name] = (run_cfg, plan_method(method, usable, gfilter), net, opt)
    inter: dict[str, list[float]] = {name: [] for name in RATIO_VARIANTS}
    for rnd in range(spec["ratio_rounds"] + 1):
        batch = data.batch(2000 + rnd, 0, 1)
        order = list(RATIO_VARIANTS[rnd % 3:] + RATIO_VARIANTS[:rnd % 3])
        for name in order:
            run_cfg, plan, net, opt = runners[name]
            inputs = _inputs(torch, device, batch, plan)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            gcl_step(net, net.encoder, inputs, run_cfg, plan, DistContext(), torch.Generator().manual_seed(rnd),
                     autocast)
            torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            opt.step()
            sync()
            if rnd > 0:  # round 0 is the warm-up
                inter[name].append(time.perf_counter() - t0)
    del runners

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
                 "interleaved": inter, "encoder_params": int(sum(p.numel() for p in net.encoder.parameters()))})


def _scan(data: Path, cache: Path, size: int, pickle_path: Path) -> dict:
    from gcl_engine import api

    t0 = time.perf_counter()
    scan = api.scan_folder(data, cache=cache, preprocess=api.PreprocessConfig(size=size))
    with open(pickle_path, "wb") as fh:
        pickle.dump(scan, fh)
    return {"seconds": time.perf_counter() - t0, "volumes": len(scan.volumes),
            "slices": sum(v.n_slices for v in scan.volumes)}


def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--data", help="benchmark volumes folder (default: the fetch_data.sh cache)")
    p.add_argument("--sizes", default="64,128")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma-separated, of {list(VARIANTS)}")
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=1, help="untimed first steps")
    p.add_argument("--data-steps", type=int, default=20, help="batches timed for the data pipeline alone")
    p.add_argument("--cos-batches", type=int, default=2, help="batches for the exact-vs-fast cosine")
    p.add_argument("--ratio-rounds", type=int, default=3, help="interleaved rounds for the cost ratios")
    p.add_argument("--base-channels", type=int, default=16)
    p.add_argument("--levels", type=int, default=5)
    p.add_argument("--volumes-per-batch", type=int, default=4)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: the engine's choice, all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    be_nice(args.nice)
    if args.child:
        spec = json.loads(args.child)
        (child_aux if spec["kind"] == "aux" else child_steps)(spec)
        return
    if args.quick:
        args.sizes, args.steps, args.warmup, args.data_steps, args.cos_batches = "64", 2, 1, 5, 1
        args.ratio_rounds = 1
        args.variants = "naive_sum,gcl exact (filter A),gcl fast (filter A)"
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}: choose from {list(VARIANTS)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    data = bench_data(args.data)
    config = {k: getattr(args, k) for k in ("sizes", "variants", "steps", "warmup", "data_steps", "cos_batches",
                                            "ratio_rounds", "base_channels", "levels", "volumes_per_batch",
                                            "partitions", "device", "threads", "seed")}
    config["data"] = str(data)
    report = Report("pretrain_speed" + ("_cuda" if args.device.startswith("cuda") else ""),
                    f"Pre-training step speed ({args.device}, issue 3)", args, config)
    tmp = Path(tempfile.mkdtemp(prefix="gcl-bench-pretrain-"))
    speed_rows, data_rows, cos_rows, ratio_lines, inter_rows = [], [], [], [], []
    try:
        for size in sizes:
            cache, pkl = tmp / f"cache{size}", tmp / f"scan{size}.pkl"
            scan_info = _scan(data, cache, size, pkl)
            spec = {"data": str(data), "out": str(tmp / "run"), "cache": str(cache), "scan_pickle": str(pkl),
                    "size": size, "base_channels": args.base_channels, "levels": args.levels,
                    "volumes_per_batch": args.volumes_per_batch, "partitions": args.partitions,
                    "device": args.device, "seed": args.seed, "threads": args.threads, "steps": args.steps,
                    "warmup": args.warmup, "data_steps": args.data_steps, "cos_batches": args.cos_batches,
                    "ratio_rounds": args.ratio_rounds}
            results = {}
            for variant in variants:
                r = run_child([sys.executable, __file__, "--nice", str(args.nice),
                               "--child", json.dumps({**spec, "kind": "steps", "variant": variant})])
                results[variant] = r
                t_train, t_data = median(r["t_train"]), median(r["t_data"])
                speed_rows.append([size, variant, r["views"], ",".join(r["labels"]), r["views"] / t_train,
                                   r["views"] / (t_train + t_data), t_train * 1000, median(r["t_cpu"]) * 1000,
                                   r["rss_before_step_mb"],
                                   r["peak_rss_mb"], r["peak_rss_mb"] - r["rss_before_step_mb"],
                                   r.get("cuda_peak_mb")])
                print(f"  {size} px {variant}: {r['views'] / t_train:.1f} views/s (train), peak "
                      f"{r['peak_rss_mb']:.0f} MiB", flush=True)
            aux = run_child([sys.executable, __file__, "--nice", str(args.nice),
                             "--child", json.dumps({**spec, "kind": "aux"})])
            d = median(aux["data_times"])
            naive = results.get("naive_sum")
            fastest_train = min(median(r["t_train"]) for r in results.values()) if results else float("nan")
            data_rows.append([size, aux["views"], aux["views"] / d, d * 1000, fastest_train * 1000,
                              "yes" if d < fastest_train else "NO"])
            for i, c in enumerate(aux["cosines"]):
                conf = c["conflicts"]
                cos_rows.append([size, i, c["exact~fast"], c["exact~plain"], c["fast~plain"], c["norm_fast/exact"],
                                 conf["exact"].get("img/conflict_rate"), conf["exact"].get("pix/conflict_rate"),
                                 conf["fast"].get("img/conflict_rate"), conf["fast"].get("pix/conflict_rate")])
            inter = aux["interleaved"]
            t_naive = inter["naive_sum"]
            for name in RATIO_VARIANTS[1:]:
                pair = [a / b for a, b in zip(inter[name], t_naive, strict=True)]
                inter_rows.append([size, name, median(inter[name]) * 1000, median(t_naive) * 1000, median(pair),
                                   ", ".join(f"{x:.2f}" for x in pair)])
            pair = [a / b for a, b in zip(inter["gcl fast (filter A)"], inter["gcl_no_mitigator (filter A)"],
                                          strict=True)]
            inter_rows.append([size, "gcl fast / gcl_no_mitigator", median(inter["gcl fast (filter A)"]) * 1000,
                               median(inter["gcl_no_mitigator (filter A)"]) * 1000, median(pair),
                               ", ".join(f"{x:.2f}" for x in pair)])
            for name in ("gcl fast (filter A)", "gcl fast, filter B", "gcl_no_filter (fast)", "gcl exact (filter A)"):
                if naive and name in results:
                    ratio = median(results[name]["t_train"]) / median(naive["t_train"])
                    verdict = "" if "exact" in name else (" (target <= 1.3x: " + ("met" if ratio <= 1.3 else
                                                                                  "NOT met") + ")")
                    ratio_lines.append(f"- {size} px: {name} / naive_sum train-step time = {ratio:.2f}x{verdict}")
            if "gcl_no_mitigator (filter A)" in results and "gcl fast (filter A)" in results:
                ratio = (median(results["gcl fast (filter A)"]["t_train"])
                         / median(results["gcl_no_mitigator (filter A)"]["t_train"]))
                ratio_lines.append(f"- {size} px: gcl fast / gcl_no_mitigator (same losses, plain sum) = "
                                   f"{ratio:.2f}x: the fast Mitigator's own cost")
            report.data[str(size)] = {"scan": scan_info, "variants": results, "aux": aux}
        cuda = args.device.startswith("cuda")
        report.add(f"Benchmark volumes ({report.data[str(sizes[0])]['scan']['volumes']} volumes), U-Net base "
                   f"{args.base_channels}, {args.levels} levels, V={args.volumes_per_batch} volumes x "
                   f"{args.partitions} partitions = {args.volumes_per_batch * args.partitions} slices, 2 views "
                   f"each; AdamW; {args.warmup} warm-up + {args.steps} timed steps per row, median; each row in its "
                   f"own child process. 'train' = gcl_step + clip + optimizer step; 'loop' adds the data batch "
                   f"(as the pre-training loop's slices_per_s does). Peak = the child's VmHWM (torch, model, data "
                   f"maps included); 'step +' = peak minus RSS just before the first step."
                   + (" bf16 autocast and channels-last on CUDA." if cuda else " fp32 on CPU.") + "\n")
        report.add(markdown_table(["px", "variant", "views", "meta labels", "train views/s", "loop views/s",
                                   "train ms/step", "CPU ms/step (data+train)", "RSS before MiB", "peak RSS MiB",
                                   "step + MiB", "CUDA peak MiB"], speed_rows, digits=1))
        report.add("Cost ratios from the rows above (separate processes, so machine-load drift between rows "
                   "enters):\n\n" + "\n".join(ratio_lines) + "\n")
        report.add(f"Cost ratios measured interleaved in one process ({args.ratio_rounds} rounds after a warm-up "
                   "round; each round runs one train step of every variant on the same batch, order rotated; ratio "
                   "per round, median). The fast GCL step's target is <= 1.3x naive_sum; note that naive_sum has "
                   "no pixel branch, while gcl_no_mitigator has the same losses as gcl without the surgery:\n")
        report.add(markdown_table(["px", "variant", "ms/step", "denominator ms/step", "ratio", "per-round ratios"],
                                  inter_rows))
        report.add("Data pipeline alone (`PretrainData.batch(step, 0, 1)`: memory-mapped cache, warp, intensity "
                   "augmentation, on the CPU), against the fastest training step of the same size:\n")
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
