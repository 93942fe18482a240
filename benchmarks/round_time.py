"""One painting round as the GUI runs it, at the interactive recipe's defaults (gcl_engine.recipe): seconds.

A round = the fine-tune child process (``api.job_command("finetune", ...)``, the CLI with JSON events and
``--background``: what the annotate panel starts), then, in this process as the panel's thread worker does,
the whole-scan prediction (``Segmenter.predict`` with the painted labels) and the ranking of the unpainted
slices (``api.rank_slices``). Round 1 starts from scratch on one painted slice (``steps_first``); rounds 2 and 3
continue from the previous model with one more slice each (``steps_continue``). Scans: the sample CT
(30 slices, 118 classes as stored) and the benchmark's brain template (189 slices of 233 x 197, 3 classes),
which is the largest scan of the annotation benchmark.

    nice -n 5 .venv/bin/python benchmarks/round_time.py [--quick] [--repeats 2]
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from common import DEFAULT_DATA, SAMPLE_DATA, Report, base_parser, be_nice, markdown_table, median

SAMPLE = (SAMPLE_DATA / "scans" / "example_ct_sm.nii.gz", SAMPLE_DATA / "labels" / "example_seg.nii.gz")


def scans() -> dict[str, tuple[Path, np.ndarray]]:
    """name -> (image path, reference labels on its grid): the sample CT, and the annotation benchmark's brain
    template with its grey / white matter map when the benchmark data is fetched."""
    from fewshot.tasks import load_task

    from gcl_engine import api

    out = {"sample CT": (SAMPLE[0], api.load_volume(SAMPLE[1]).array.astype(np.int64))}
    if (DEFAULT_DATA / "nilearn_icbm").is_dir():
        task = load_task("icbm")
        out["brain template"] = (Path(task.image), task.labels)
    return out


def one_round(image_path: Path, image, labels: np.ndarray, painted: list[int], model: str | None, out: Path,
              names: tuple[str, ...]) -> tuple[dict, str]:
    from gcl_engine import api

    r = api.RECIPE
    given = np.zeros_like(labels)
    given[painted] = labels[painted]
    label_file = api.export_nifti(given, image, out.with_suffix(".labels_in.nii.gz"))
    cfg = api.FinetuneConfig(image=str(image_path), labels=str(label_file), out=str(out), slices=tuple(painted),
                             init_model=model, class_names=names, steps=r.steps(model is not None),
                             preview_every=10_000, preprocess=r.preprocess, model=r.model, device="cpu")
    cfg_path = out.with_suffix(".json")
    cfg_path.write_text(api.to_json(cfg), encoding="utf-8")
    t0 = time.perf_counter()
    proc = subprocess.run(api.job_command("finetune", cfg_path), capture_output=True, text=True, check=False)
    finetune_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    first_step = next((e for e in events if e.get("event") == "Metric"), None)
    t1 = time.perf_counter()
    seg = api.Segmenter.load(out, api.PredictConfig(device="cpu"))
    seg.predict(image, painted=api.PaintedLabels(given, None, tuple(painted)))
    predict_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    ranking = api.rank_slices(seg, image, painted)
    suggest_s = time.perf_counter() - t2
    return ({"finetune_child_s": finetune_s, "predict_s": predict_s, "suggest_s": suggest_s,
             "round_s": finetune_s + predict_s + suggest_s, "steps": cfg.steps, "events": len(events),
             "first_metric": first_step is not None, "next": ranking[0].slice}, str(out))


def run(args) -> dict:
    from gcl_engine import api

    rows, raw = [], {}
    for name, (image_path, labels) in scans().items():
        image = api.load_volume(image_path)
        names = ("background", *[f"class {i}" for i in range(1, int(labels.max()) + 1)])
        n = image.array.shape[0]
        order = [n // 2, n // 4, (3 * n) // 4][: 2 if args.quick else 3]
        for rep in range(args.repeats):
            with tempfile.TemporaryDirectory(prefix="gcl-round-") as tmp:
                model, painted = None, []
                for i, k in enumerate(order, start=1):
                    painted.append(k)
                    load = os.getloadavg()[0]
                    timing, model = one_round(image_path, image, labels, sorted(painted), model,
                                              Path(tmp) / f"round{i}.pt", names)
                    raw.setdefault(name, []).append({"round": i, "repeat": rep, "load": load, **timing})
                    print(f"{name} round {i} (repeat {rep}): {timing['round_s']:.1f} s (fine-tune child "
                          f"{timing['finetune_child_s']:.1f}, predict {timing['predict_s']:.1f}, suggest "
                          f"{timing['suggest_s']:.1f}), load {load:.1f}", flush=True)
        for i in range(1, len(order) + 1):
            runs = [t for t in raw[name] if t["round"] == i]
            rows.append([name, i, runs[0]["steps"], median([t["finetune_child_s"] for t in runs]),
                         median([t["predict_s"] for t in runs]), median([t["suggest_s"] for t in runs]),
                         median([t["round_s"] for t in runs]), max(t["round_s"] for t in runs),
                         median([t["load"] for t in runs])])
    return {"rows": rows, "raw": raw}


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    be_nice(args.nice)
    from gcl_engine import api

    report = Report("round_time", "One painting round through the GUI's path, at the interactive recipe", args,
                    {"recipe": api.to_dict(api.RECIPE), "repeats": args.repeats})
    result = run(args)
    report.add("Seconds, median over repeats (max of the round as well); the fine-tune child includes its start-up "
               "(interpreter, torch, the scan), the prediction covers the whole scan with the painted slices kept.\n\n"
               + markdown_table(["scan", "round", "steps", "fine-tune child", "predict", "suggest", "round",
                                 "round (max)", "load avg"], result["rows"]))
    report.data = result
    report.write()


if __name__ == "__main__":
    main()
