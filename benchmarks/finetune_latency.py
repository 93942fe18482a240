"""Time from starting a fine-tune to its first Preview event, on CPU (issue 4).

Two paths, for each ``preview_every``:
  * in-process: ``api.finetune(cfg, on_event=...)`` called in this script's process, after the engine import:
    the process's first call ("cold", first use of the kernels) and further calls ("warm", median), with the
    engine's default thread count and with one thread (what the GUI's ``--background`` child uses here);
  * child process, as the GUI does it: ``api.job_command("finetune", cfg_json, cancel_file)`` started with
    subprocess, JSON events read line by line until the first Preview (imports, volume loading and
    preprocessing included); then the cancel file is created and the time to the child's exit is noted.
The fine-tune is configured as a real interactive one (300 steps) and stopped at the first Preview. Data: the
sample CT and its label map (118 classes), annotated slices 5,15,25, preview of slice 15.

    nice -n 5 .venv/bin/python benchmarks/finetune_latency.py [--quick] [--preview-every 10,25] [--repeats 2]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import SAMPLE_CT, SAMPLE_LABELS, Report, base_parser, be_nice, markdown_table, median


def _config(spec: dict, preview_every: int, out: Path, threads: int | None = None):
    from gcl_engine import api

    return api.FinetuneConfig(
        image=str(SAMPLE_CT), labels=str(SAMPLE_LABELS), out=str(out), slices=(5, 15, 25), steps=spec["steps"],
        preview_every=preview_every, preview_slices=(15,), device="cpu", threads=threads,
        preprocess=api.PreprocessConfig(size=spec["size"]), model=api.ModelConfig(base_channels=spec["base"]))


def inprocess_run(spec: dict, preview_every: int, work: Path, index: int, threads: int | None) -> dict:
    """``api.finetune`` in this process, stopped (cancelled) at its first Preview."""
    from gcl_engine import api

    cfg = _config(spec, preview_every, work / f"inproc_{preview_every}_{index}_{threads}.pt", threads)
    token = api.CancelToken()
    seen: dict = {}

    def on_event(event):
        if isinstance(event, api.Metric) and "first_step" not in seen:
            seen["first_step"] = time.perf_counter()
        if isinstance(event, api.Preview) and "preview" not in seen:
            seen["preview"] = time.perf_counter()
            token.cancel()

    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    result = api.finetune(cfg, on_event=on_event, cancel=token)
    end = time.perf_counter()
    return {"preview_s": seen["preview"] - start, "first_step_s": seen["first_step"] - start,
            "end_s": end - start, "engine_first_preview_s": result.seconds_to_first_preview,
            "steps": result.steps_done, "load_1min": load0, "threads": threads}


def child_process_run(spec: dict, preview_every: int, work: Path, index: int) -> dict:
    """The GUI's path: the CLI child with JSON events; parsed with api.event_from_json."""
    from gcl_engine import api

    cfg = _config(spec, preview_every, work / f"child_{preview_every}_{index}.pt")
    cfg_path = work / f"child_{preview_every}_{index}.json"
    cfg_path.write_text(api.to_json(cfg), encoding="utf-8")
    cancel = work / f"cancel_{preview_every}_{index}"
    argv = api.job_command("finetune", cfg_path, cancel)
    marks: dict = {}
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        now = time.perf_counter()
        marks.setdefault("first_line", now)
        try:
            event = api.event_from_json(line)
        except (ValueError, KeyError):
            continue
        if isinstance(event, api.Metric):
            marks.setdefault("first_step", now)
        if isinstance(event, api.Preview):
            marks["preview"] = now
            cancel.touch()
            break
    rest, err = proc.communicate()
    end = time.perf_counter()
    if "preview" not in marks:
        raise RuntimeError(f"no Preview event (exit {proc.returncode}):\n{err[-2000:]}")
    return {"preview_s": marks["preview"] - start, "first_line_s": marks["first_line"] - start,
            "first_step_s": marks["first_step"] - start, "end_s": end - start, "exit_code": proc.returncode,
            "load_1min": load0, "argv": argv[1:]}


def _threads_name(threads: int | None) -> str:
    import os as _os

    return f"engine default: {_os.cpu_count()} threads" if threads is None else f"threads={threads}"


def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--preview-every", default="10,25")
    p.add_argument("--repeats", type=int, default=2, help="warm in-process calls and child-process runs each")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--base", type=int, default=16, help="U-Net base channels")
    p.add_argument("--steps", type=int, default=300, help="configured length (stopped at the first Preview)")
    p.add_argument("--inproc-threads", default="engine,1",
                   help="thread settings of the in-process runs: 'engine' (FinetuneConfig.threads=None) and/or numbers")
    args = p.parse_args()
    be_nice(args.nice)
    if args.quick:
        args.preview_every, args.repeats = "10", 1
    everies = [int(x) for x in args.preview_every.split(",")]
    config = {k: getattr(args, k) for k in ("preview_every", "repeats", "size", "base", "steps",
                                            "inproc_threads")}
    report = Report("finetune_latency", "Fine-tune: time to the first Preview (CPU, issue 4)", args, config)
    work = Path(tempfile.mkdtemp(prefix="gcl-bench-ft-"))
    spec = {"size": args.size, "base": args.base, "steps": args.steps, "repeats": args.repeats, "work": str(work)}
    thread_settings = [None if t.strip() == "engine" else int(t) for t in args.inproc_threads.split(",")]
    rows = []
    try:
        t0 = time.perf_counter()
        from gcl_engine import api  # noqa: F401  (the in-process runs happen here, after the import)

        import_s = time.perf_counter() - t0
        cold = None

        def row(every, name, runs):
            per_step = [(r["preview_s"] - r["first_step_s"]) / max(every - 1, 1) for r in runs]
            rows.append([every, name, median([r["preview_s"] for r in runs]),
                         median([r["first_step_s"] for r in runs]), median(per_step),
                         median([r["end_s"] for r in runs]),
                         median([r["first_line_s"] for r in runs]) if "first_line_s" in runs[0] else "-",
                         ", ".join(f"{r['preview_s']:.2f}" for r in runs),
                         ", ".join(f"{r['load_1min']:.1f}" for r in runs)])

        for every in everies:
            inproc: dict = {t: [] for t in thread_settings}
            child = []
            for i in range(args.repeats + (1 if cold is None else 0)):  # alternate: load drift hits all alike
                if cold is None:
                    cold = {**inprocess_run(spec, every, work, i, thread_settings[0]), "preview_every": every}
                    row(every, f"in-process, first call of the process ({_threads_name(thread_settings[0])})",
                        [cold])
                    continue
                for t in thread_settings:
                    inproc[t].append(inprocess_run(spec, every, work, i, t))
                child.append(child_process_run(spec, every, work, i))
            for t in thread_settings:
                row(every, f"in-process, warm ({_threads_name(t)})", inproc[t])
            row(every, "child process (job_command)", child)
            report.data[str(every)] = {"in_process": {str(t): v for t, v in inproc.items()}, "child": child}
        report.data["cold"], report.data["import_s"] = cold, import_s
        report.add(f"Sample CT (30 x 101 x 122), 118 classes, slices 5,15,25 annotated, preview of slice 15; "
                   f"size {args.size}, U-Net base {args.base}, batch 4, {args.steps} steps configured and stopped "
                   f"at the first Preview (a cancel). Times in seconds from the call (in-process) or from "
                   f"Popen (child). 'first step' = first Metric event; 'end' = api.finetune returned / the child "
                   f"exited after the cancel (the model is saved on the way out); 'first line' = the child's "
                   f"first JSON event (interpreter + engine import + volume loading). In-process runs happen in "
                   f"this script's process, which imported the engine in {import_s:.2f} s before (not counted); "
                   f"in-process and child runs alternate, so a change of machine load hits all; the 1-minute load "
                   f"average at each run's start is listed. Medians over {args.repeats} runs. 's/step' = (first "
                   f"Preview - first step) / (preview_every - 1). The child is started with the argv of "
                   f"api.job_command: `{' '.join(report.data[str(everies[0])]['child'][0]['argv'][1:4])} ... "
                   f"{' '.join(a for a in report.data[str(everies[0])]['child'][0]['argv'] if a.startswith('--b'))}`"
                   f" (the CLI's --background: niceness +10 and cpu_count - 1 threads).\n")
        report.add(markdown_table(["preview_every", "path", "first Preview s", "first step s", "s/step",
                                   "end s", "first line s", "runs (first Preview) s", "load at start"], rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.write()


if __name__ == "__main__":
    main()
