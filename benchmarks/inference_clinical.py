"""Whole-volume prediction at clinical size: a 512x512x300 CT through onnxruntime, old path against new (issue 17).

The clinical CT is the sample CT (30x101x122) resampled (linear) onto a 512x512x300 grid over the same physical
extent. Two models are fine-tuned on the sample CT through the CLI (``gcl finetune``, slices 5,15,25) and
exported with ``gcl export-onnx``: one on all 118 labels of example_seg, one on its 6 largest labels (7 classes).
Each (model, path) predicts the clinical CT in its own child process (``Segmenter.load(onnx).predict``, one
warm-up on the sample CT first), the paths of a model back to back so machine load hits them alike:

- ``before``: the engine as it is at ``--before`` (a git ref, default where this branch left main; its files
  taken with ``git archive`` and put first on the child's PYTHONPATH), with its own defaults;
- ``probabilities`` (PredictConfig.upsample): this engine, every class's probability map upsampled to full size
  before the argmax;
- ``labels``: this engine's default, only pixels on a class boundary get interpolated probabilities
  (data/label_resample.py).

Peak RSS is the child's VmHWM after the prediction (imports, model and volume included). Labels are compared
voxel by voxel with the first path's.

    nice -n 5 .venv/bin/python benchmarks/inference_clinical.py [--quick] [--paths before,labels] [--before main]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    REPO,
    SAMPLE_CT,
    SAMPLE_LABELS,
    Report,
    base_parser,
    be_nice,
    child_reply,
    markdown_table,
    peak_rss_mb,
    run_child,
    run_gcl,
)

PATHS = ("before", "probabilities", "labels")


def build_clinical_ct(out: Path, shape_xyz: tuple[int, int, int]) -> None:
    """The sample CT resampled (linear) onto ``shape_xyz`` voxels over its own physical extent."""
    import SimpleITK as sitk

    img = sitk.ReadImage(str(SAMPLE_CT))
    size, spacing = img.GetSize(), img.GetSpacing()
    new_spacing = [sp * n / m for sp, n, m in zip(spacing, size, shape_xyz, strict=True)]
    res = sitk.Resample(img, list(shape_xyz), sitk.Transform(), sitk.sitkLinear, img.GetOrigin(), new_spacing,
                        img.GetDirection(), -1024.0, sitk.sitkInt16)
    sitk.WriteImage(res, str(out))


def seven_class_labels(out: Path) -> None:
    """example_seg's 6 largest labels as 1..6, the rest background."""
    import numpy as np
    import SimpleITK as sitk

    img = sitk.ReadImage(str(SAMPLE_LABELS))
    arr = sitk.GetArrayFromImage(img)
    values, counts = np.unique(arr[arr > 0], return_counts=True)
    keep = values[np.argsort(counts)[::-1][:6]]
    new = np.zeros_like(arr, dtype=np.uint8)
    for i, v in enumerate(sorted(keep), start=1):
        new[arr == v] = i
    res = sitk.GetImageFromArray(new)
    res.CopyInformation(img)
    sitk.WriteImage(res, str(out))


def child_predict(spec: dict) -> None:
    import hashlib

    import numpy as np

    from gcl_engine import api

    fields = {} if spec["path"] == "before" else {"upsample": spec["path"]}
    cfg = api.PredictConfig(backend="onnxruntime", device="cpu", threads=spec["threads"], **fields)
    seg = api.Segmenter.load(spec["model"], cfg)
    seg.predict(api.load_volume(spec["warmup"]))
    vol = api.load_volume(spec["volume"])
    rss_before = peak_rss_mb()
    times = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        labels = seg.predict(vol).labels
        times.append(time.perf_counter() - t0)
    np.save(spec["labels_file"], labels)
    child_reply({"times_s": times, "peak_rss_mb": peak_rss_mb(), "peak_rss_before_mb": rss_before,
                 "shape": list(vol.array.shape), "classes": len(seg.class_names),
                 "labels_sha": hashlib.sha1(labels.tobytes()).hexdigest()[:12],
                 "providers": seg.backend.providers})


def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--shape", default="512,512,300", help="x,y,z voxels of the clinical CT")
    p.add_argument("--size", type=int, default=128, help="the models' in-plane size")
    p.add_argument("--finetune-steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, help="PredictConfig.threads (default: the engine's rule)")
    p.add_argument("--models", default="7,118", help="which models: 7 and/or 118 classes")
    p.add_argument("--paths", default="before,labels", help=f"which of {', '.join(PATHS)}, the reference first")
    p.add_argument("--before", default="merge-base", help="git ref of the 'before' engine (default: where this "
                                                          "branch left main)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    be_nice(args.nice)
    if args.child:
        child_predict(json.loads(args.child))
        return
    if args.quick:
        args.shape, args.finetune_steps, args.models = "256,256,60", 5, "7"
    shape = tuple(int(s) for s in args.shape.split(","))
    paths = [s.strip() for s in args.paths.split(",") if s.strip()]
    config = {k: getattr(args, k) for k in ("shape", "size", "finetune_steps", "repeats", "threads", "models",
                                            "paths", "before")}
    report = Report("inference_clinical", "Whole-volume prediction at clinical size, onnxruntime CPU (issue 17)",
                    args, config)
    work = Path(tempfile.mkdtemp(prefix="gcl-bench-clinical-"))
    rows, prep = [], []
    if not paths or any(s not in PATHS for s in paths):
        sys.exit(f"--paths: choose from {', '.join(PATHS)}")
    try:
        before_env = None
        if "before" in paths:
            (work / "before").mkdir()
            ref = ["merge-base", "main", "HEAD"] if args.before == "merge-base" else ["rev-parse", args.before]
            commit = subprocess.run(["git", "-C", str(REPO), *ref], capture_output=True, text=True,
                                    check=True).stdout.strip()[:12]
            archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "gcl_engine"], capture_output=True,
                                     check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(work / "before")], input=archive, check=True)
            config["before_commit"] = commit
            before_env = {"PYTHONPATH": str(work / "before")}
        ct = work / "clinical_ct.nii"
        build_clinical_ct(ct, shape)
        labels7 = work / "labels7.nii.gz"
        seven_class_labels(labels7)
        for classes in (int(m) for m in args.models.split(",")):
            model, onnx = work / f"model{classes}.pt", work / f"model{classes}.onnx"
            cfg = {"image": str(SAMPLE_CT), "labels": str(SAMPLE_LABELS if classes == 118 else labels7),
                   "out": str(model), "device": "cpu", "preprocess": {"size": args.size}}
            (work / f"ft{classes}.json").write_text(json.dumps(cfg), encoding="utf-8")
            ft_s = run_gcl(["finetune", "--config", str(work / f"ft{classes}.json"), "--steps",
                            str(args.finetune_steps), "--slices", "5,15,25"])
            run_gcl(["export-onnx", "--model", str(model), "--out", str(onnx)])
            prep.append([classes, ft_s])
            results = {}
            for path in paths:
                spec = {"model": str(onnx), "path": path, "threads": args.threads, "warmup": str(SAMPLE_CT),
                        "volume": str(ct), "repeats": args.repeats,
                        "labels_file": str(work / f"labels{classes}_{path}.npy")}
                results[path] = run_child([sys.executable, __file__, "--nice", str(args.nice), "--child",
                                           json.dumps(spec)], env=before_env if path == "before" else None)
            import numpy as np

            ref = np.load(work / f"labels{classes}_{paths[0]}.npy")
            for path in paths:
                r = results[path]
                got = np.load(work / f"labels{classes}_{path}.npy")
                differ = int((got != ref).sum())
                r["voxels_differ"] = differ
                t = sorted(r["times_s"])[len(r["times_s"]) // 2]
                name = f"before ({config['before_commit']})" if path == "before" else path
                rows.append([r["classes"], "x".join(map(str, r["shape"])), name, t,
                             ", ".join(f"{x:.1f}" for x in r["times_s"]), r["peak_rss_mb"], differ,
                             differ / ref.size])
            report.data[str(classes)] = results
            del ref
        report.add(f"Clinical CT: the sample CT resampled to {args.shape} (x,y,z) voxels. Models: U-Net base 16 at "
                   f"{args.size} px, fine-tuned {args.finetune_steps} steps from scratch on slices 5,15,25 of the "
                   f"sample CT, exported to ONNX; onnxruntime CPUExecutionProvider, PredictConfig.threads="
                   f"{args.threads} (None: each engine's default). Each row its own child process (warm-up on the "
                   f"sample CT, then {args.repeats} timed predict() of the clinical CT); 'voxels differ': against "
                   f"the {paths[0]} row's labels.\n")
        report.add(markdown_table(["classes", "shape (z,y,x)", "upsample", "median s", "runs s", "peak RSS MiB",
                                   "voxels differ", "share differ"], rows, digits=4))
        report.add("Preparation (CLI child processes):\n")
        report.add(markdown_table(["classes", "gcl finetune s"], prep))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.write()


if __name__ == "__main__":
    main()
