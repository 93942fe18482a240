"""Small helpers shared by the speed benchmarks: tables, result files, memory, timing, child processes.

Benchmarks are scripts, never tests. Each one prints a markdown table and writes it to
``benchmarks/results/<name>.md`` plus ``<name>.json`` (the configuration, the git commit, the machine and
its load, and the raw numbers), so a figure can always be traced back to the code and settings behind it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
SAMPLE_DATA = REPO / "resources" / "sample_data"
OWN_FILES = ("common.py", "scan_speed.py", "pretrain_speed.py", "inference_speed.py", "finetune_latency.py",
             "ui_responsiveness.py", "stall_monitor.py", "inference_clinical.py", "threads_under_load.py",
             "run_all.py")
SAMPLE_CT = SAMPLE_DATA / "scans" / "example_ct_sm.nii.gz"  # the bundled abdominal CT and its 118 classes
SAMPLE_LABELS = SAMPLE_DATA / "labels" / "example_seg.nii.gz"
DEFAULT_DATA = Path(os.environ.get("GCL_BENCH_DATA", Path.home() / ".cache/gcl-studio/bench-data")) / "volumes"


# --- command line ---------------------------------------------------------------------------------

def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smallest settings, a smoke run (seconds)")
    p.add_argument("--results", default=str(RESULTS), help="folder for <name>.md and <name>.json")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--nice", type=int, default=5, help="raise this process's niceness to at least this")
    return p


def bench_data(path: str | None = None) -> Path:
    folder = Path(path) if path else DEFAULT_DATA
    if not folder.is_dir() or not any(folder.iterdir()):
        sys.exit(f"benchmark volumes not found in {folder}: run `bash benchmarks/fetch_data.sh` first "
                 "(or set GCL_BENCH_DATA)")
    return folder


def be_nice(level: int) -> None:
    """The machine is shared: raise our niceness to ``level`` (children inherit it)."""
    try:
        current = os.nice(0)
        if current < level:
            os.nice(level - current)
    except OSError:
        pass


# --- memory ---------------------------------------------------------------------------------------

def _proc_status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; getrusage where /proc is missing), MiB."""
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 1024  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def rss_mb() -> float:
    """Current resident memory (VmRSS), MiB; the peak where /proc is missing."""
    now = _proc_status_mb("VmRSS")
    return now if now is not None else peak_rss_mb()


# --- timing ---------------------------------------------------------------------------------------

def time_call(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1, sync: Callable[[], None] | None = None
              ) -> dict[str, Any]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; seconds: median, min, max, all."""
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return summarize(times)


def summarize(times: Sequence[float]) -> dict[str, Any]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "times_s": [round(t, 4) for t in times]}


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- child processes ------------------------------------------------------------------------------

def run_child(argv: list[str], timeout: float | None = None, env: dict | None = None) -> dict[str, Any]:
    """Run ``argv``; its last stdout line must be JSON. Adds ``child_maxrss_mb`` from wait4, which on Linux may
    include the parent's pages at fork time: prefer the child's own VmHWM (``peak_rss_mb``, see child_reply)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, **(env or {})})
    t0 = time.perf_counter()
    out, err = proc.communicate(timeout=timeout) if not hasattr(os, "wait4") else _communicate_wait4(proc)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{err[-3000:]}")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    result = json.loads(lines[-1]) if lines else {}
    result.setdefault("wall_s", wall)
    if getattr(proc, "maxrss_mb", None) is not None:
        result["child_maxrss_mb"] = proc.maxrss_mb
    return result


def _communicate_wait4(proc: subprocess.Popen) -> tuple[str, str]:
    """Read both pipes to the end, then reap the child with wait4 to get its own rusage."""
    import threading

    chunks: dict[str, str] = {}

    def drain(name, stream):
        chunks[name] = stream.read()

    threads = [threading.Thread(target=drain, args=(n, s)) for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 1024
    proc.maxrss_mb = usage.ru_maxrss * scale
    return chunks.get("out", ""), chunks.get("err", "")


def child_reply(payload: dict[str, Any]) -> None:
    """What a child prints last: one JSON line (plus its peak RSS as it saw it)."""
    payload.setdefault("peak_rss_mb", peak_rss_mb())
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


# --- provenance -----------------------------------------------------------------------------------

def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [ln[3:] for ln in git("status", "--porcelain", "--untracked-files=no").splitlines() if ln.strip()]
    mine = {f"benchmarks/{name}" for name in OWN_FILES}
    relevant = [f for f in dirty if f.startswith("gcl_engine/") or f in mine]  # what can change these figures
    # a copy of the tree without .git (a lent device machine) names its commit in GCL_GIT_COMMIT
    commit = git("rev-parse", "HEAD").strip() or os.environ.get("GCL_GIT_COMMIT", "")
    return {"commit": commit, "dirty": bool(dirty), "dirty_files": dirty[:40],
            "relevant_dirty": relevant}


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "niceness": os.nice(0), "load_average_1_5_15": load_average(),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            info["mem_total_gb"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


# --- output ---------------------------------------------------------------------------------------

def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 2) -> str:
    cells = [[fmt(c, digits) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, rule, *body])


class Report:
    """Collects markdown sections; ``write`` prints them and stores ``<name>.md`` and ``<name>.json``."""

    def __init__(self, name: str, title: str, args: argparse.Namespace, config: dict[str, Any]):
        self.name, self.title, self.args = name, title, args
        self.sections: list[str] = []
        self.data: dict[str, Any] = {}
        self.started = time.time()
        self.meta: dict[str, Any] = {"benchmark": name, "config": config, "git": git_info(),
                                     "machine_at_start": machine_info(),
                                     "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}

    def add(self, text: str) -> None:
        self.sections.append(text.rstrip() + "\n")
        print(text.rstrip() + "\n", flush=True)

    def write(self) -> str:
        self.meta["machine_at_end"] = machine_info()
        self.meta["seconds"] = round(time.time() - self.started, 1)
        load = self.meta["machine_at_start"].get("load_average_1_5_15", [])
        load_end = self.meta["machine_at_end"].get("load_average_1_5_15", [])
        git = self.meta["git"]
        changes = " (uncommitted changes in the app, tests or elsewhere)" if git["dirty"] else ""
        if git["relevant_dirty"]:
            changes = f" plus uncommitted changes in {', '.join(git['relevant_dirty'])}"
        head = (f"# {self.title}\n\n"
                f"commit `{git['commit'][:12]}`{changes}, "
                f"{self.meta['started']}, {self.meta['seconds']} s, {self.meta['machine_at_end'].get('cpu', '?')} "
                f"x{os.cpu_count()}, load average at start {load[:1]} / end {load_end[:1]} "
                f"({'shared machine' if (load and load[0] > 0.5) or (load_end and load_end[0] > 0.5) else 'idle'}), "
                f"niceness {os.nice(0)}{', --quick' if self.args.quick else ''}.\n")
        text = head + "\n" + "\n".join(self.sections)
        if not self.args.no_write:
            out = Path(self.args.results)
            out.mkdir(parents=True, exist_ok=True)
            suffix = "_quick" if self.args.quick else ""
            (out / f"{self.name}{suffix}.md").write_text(text, encoding="utf-8")
            payload = {**self.meta, "results": self.data}
            (out / f"{self.name}{suffix}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n",
                                                          encoding="utf-8")
            print(f"wrote {out / (self.name + suffix)}.md and .json")
        return text


def run_gcl(args: list[str]) -> float:
    """``gcl ARGS`` in a child interpreter (what a user runs); its wall time in seconds, or its stderr's end."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gcl_engine.cli", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"gcl {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0
