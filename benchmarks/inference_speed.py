"""Whole-volume inference speed: torch eager against onnxruntime (issue 4).

For each size, a tiny model is fine-tuned from scratch through the CLI (``gcl finetune --steps 5`` on the sample
CT and its labels, slices 5,15,25; the label map has 118 classes, so the model has 118 outputs) and exported with
``gcl export-onnx``. Then ``api.Segmenter.load(model, PredictConfig(backend=...)).predict(volume)`` is timed
(warm-up, then repeats, median) on the sample CT and on a bigger volume (the 512x512 DICOM CT by default).
Each (size, backend) runs in its own child process, volumes in increasing size, so the peak RSS after each
volume is that volume's. 'network only' times the backend's logits over the already prepared slices (same batch
size): the rest of ``predict`` is normalisation, resizing, softmax, resampling back and argmax.

    nice -n 5 .venv/bin/python benchmarks/inference_speed.py [--quick] [--sizes 128,256] [--big dicom_ct|icbm]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import (
    DEFAULT_DATA,
    SAMPLE_CT,
    SAMPLE_DATA,
    SAMPLE_LABELS,
    Report,
    base_parser,
    be_nice,
    child_reply,
    markdown_table,
    peak_rss_mb,
    run_child,
    run_gcl,
    time_call,
)

BIG = {
    "dicom_ct": [DEFAULT_DATA / "totalseg" / "example_ct_dicom", SAMPLE_DATA / "scans" / "ct_dicom"],
    "icbm": [DEFAULT_DATA / "nilearn_icbm" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"],
}


def child_predict(spec: dict) -> None:
    import numpy as np
    import torch

    from gcl_engine import api
    from gcl_engine.data.preprocessing import prepare_volume_slices

    if spec.get("torch_threads"):
        torch.set_num_threads(spec["torch_threads"])  # Segmenter leaves torch's default (all cores)
    cfg = api.PredictConfig(backend=spec["backend"], device=spec["device"], batch_size=spec["batch_size"])
    t0 = time.perf_counter()
    seg = api.Segmenter.load(spec["model"], cfg)
    load_s = time.perf_counter() - t0
    sync = torch.cuda.synchronize if torch.cuda.is_available() and spec["device"] != "cpu" else None
    out = []
    for path in spec["volumes"]:
        vol = api.load_volume(path)
        last: dict = {}

        def run(v=vol, keep=last):
            keep["prediction"] = seg.predict(v)

        timing = time_call(run, repeats=spec["repeats"], warmup=spec["warmup"], sync=sync)
        slices = prepare_volume_slices(vol.array, vol.meta.modality, seg.preprocess).numpy()
        bs = cfg.batch_size

        def network(s=slices, b=bs):
            for i in range(0, len(s), b):
                seg.backend.logits(np.ascontiguousarray(s[i:i + b, None], dtype=np.float32))

        net_timing = time_call(network, repeats=spec["repeats"], warmup=1, sync=sync)
        labels = last["prediction"].labels
        del last["prediction"]
        out.append({"volume": str(path), "shape": list(vol.array.shape), "slices": int(slices.shape[0]),
                    "predict": timing, "network": net_timing, "peak_rss_mb_after": peak_rss_mb(),
                    "labels_sha": _digest(labels), "labels_file": _save_labels(spec, path, labels)})
    providers = getattr(seg.backend, "providers", None)
    child_reply({"backend": seg.backend_name, "providers": providers, "load_s": load_s, "volumes": out,
                 "torch_threads": torch.get_num_threads(), "classes": len(seg.class_names)})


def _digest(array) -> str:
    import hashlib

    return hashlib.sha1(array.tobytes()).hexdigest()[:12]


def _save_labels(spec: dict, path, labels) -> str:
    import numpy as np

    target = Path(spec["work"]) / f"{spec['backend']}_{spec['size']}_{Path(path).name}.npy"
    np.save(target, labels)
    return str(target)


def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--sizes", default="128,256")
    p.add_argument("--big", default="dicom_ct", choices=[*BIG, "none"], help="the bigger volume")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16, help="PredictConfig.batch_size")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (onnxruntime uses CUDA when not cpu)")
    p.add_argument("--finetune-steps", type=int, default=5)
    p.add_argument("--backends", default="torch,onnxruntime")
    p.add_argument("--torch-threads", type=int, help="torch.set_num_threads in the torch child (default: torch's)")
    p.add_argument("--tag", default="", help="suffix of the result file names")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    be_nice(args.nice)
    if args.child:
        child_predict(json.loads(args.child))
        return
    if args.quick:
        args.sizes, args.big, args.repeats = "128", "none", 1
    volumes = [SAMPLE_CT]
    if args.big != "none":
        found = [c for c in BIG[args.big] if c.exists()]
        if not found:
            sys.exit(f"{args.big} not found in {BIG[args.big]}: run `bash benchmarks/fetch_data.sh`")
        volumes.append(found[0])
    sizes = [int(s) for s in args.sizes.split(",")]
    config = {k: getattr(args, k) for k in ("sizes", "big", "repeats", "warmup", "batch_size", "device",
                                            "finetune_steps", "backends", "torch_threads")}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    config["volumes"] = [str(v) for v in volumes]
    report = Report("inference_speed" + ("_cuda" if args.device.startswith("cuda") else "")
                    + (f"_{args.tag}" if args.tag else ""),
                    f"Whole-volume inference, torch eager vs onnxruntime ({args.device}, issue 4)", args, config)
    work = Path(tempfile.mkdtemp(prefix="gcl-bench-infer-"))
    rows, net_rows, prep_rows, agree_rows = [], [], [], []
    try:
        for size in sizes:
            cfg_path = work / f"ft{size}.json"
            model, onnx = work / f"model{size}.pt", work / f"model{size}.onnx"
            cfg_path.write_text(json.dumps({"image": str(SAMPLE_CT), "labels": str(SAMPLE_LABELS), "out": str(model),
                                            "device": "cpu", "preprocess": {"size": size}}), encoding="utf-8")
            ft_s = run_gcl(["finetune", "--config", str(cfg_path), "--steps", str(args.finetune_steps),
                         "--slices", "5,15,25"])
            ex_s = run_gcl(["export-onnx", "--model", str(model), "--out", str(onnx)])
            prep_rows.append([size, ft_s, ex_s, model.stat().st_size / 1e6, onnx.stat().st_size / 1e6])
            per_backend = {}
            for backend, path in (("torch", model), ("onnxruntime", onnx)):
                if backend not in backends:
                    continue
                spec = {"backend": backend, "model": str(path), "device": args.device, "repeats": args.repeats,
                        "torch_threads": args.torch_threads,
                        "warmup": args.warmup, "batch_size": args.batch_size, "size": size, "work": str(work),
                        "volumes": [str(v) for v in volumes]}
                r = run_child([sys.executable, __file__, "--nice", str(args.nice), "--child", json.dumps(spec)])
                per_backend[backend] = r
                where = f"{r['backend']} ({', '.join(r['providers'])})" if r.get("providers") else \
                    f"torch eager ({r['torch_threads']} threads)"
                for v in r["volumes"]:
                    t = v["predict"]["median_s"]
                    rows.append([size, Path(v["volume"]).name, "x".join(map(str, v["shape"])), where, v["slices"] / t,
                                 t, ", ".join(f"{x:.2f}" for x in v["predict"]["times_s"]), v["peak_rss_mb_after"]])
                    tn = v["network"]["median_s"]
                    net_rows.append([size, Path(v["volume"]).name, r["backend"], v["slices"] / tn, tn / t])
                report.data.setdefault(str(size), {})[backend] = r
            import numpy as np

            both = "torch" in per_backend and "onnxruntime" in per_backend
            for vt, vo in zip(*(per_backend[b]["volumes"] for b in ("torch", "onnxruntime")), strict=True) if both \
                    else ():
                a, b = np.load(vt["labels_file"]), np.load(vo["labels_file"])
                speedup = vt["predict"]["median_s"] / vo["predict"]["median_s"]
                net_speedup = vt["network"]["median_s"] / vo["network"]["median_s"]
                agree_rows.append([size, Path(vt["volume"]).name, speedup, net_speedup, float((a == b).mean())])
            report.data[str(size)]["finetune_s"], report.data[str(size)]["export_s"] = ft_s, ex_s
        classes = next(iter(report.data[str(sizes[0])][b] for b in backends))["classes"]
        report.add(f"Model: U-Net base 16, 5 levels, {classes} classes (all labels of example_seg), fine-tuned "
                   f"{args.finetune_steps} steps from scratch; batch size {args.batch_size}; {args.warmup} warm-up + "
                   f"{args.repeats} timed predict() calls, median; each (size, backend) in its own child process, "
                   f"volumes in increasing size (peak RSS = the child's VmHWM after that volume, imports included). "
                   f"slices/s counts the slices along the cut axis.\n")
        report.add(markdown_table(["px", "volume", "shape", "backend", "slices/s", "median s", "runs s",
                                   "peak RSS MiB"], rows))
        if agree_rows:
            report.add("onnxruntime against torch (time ratio torch / onnxruntime; > 1: onnxruntime faster), and "
                       "the share of voxels where the two label maps agree:\n")
            report.add(markdown_table(["px", "volume", "predict speed-up", "network-only speed-up", "labels agree"],
                                      agree_rows, digits=3))
        report.add("Network alone (backend logits over the prepared slices) and its share of predict():\n")
        report.add(markdown_table(["px", "volume", "backend", "network slices/s", "share of predict time"],
                                  net_rows))
        report.add("Preparation (each a CLI child process, imports included):\n")
        report.add(markdown_table(["px", "gcl finetune s", "gcl export-onnx s", ".pt MB", ".onnx MB"], prep_rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.write()


if __name__ == "__main__":
    main()
