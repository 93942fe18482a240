"""napari's start-up with and without GCL Studio installed, and the plugin's first NIfTI read; prints a table.

Two fresh venvs see this venv's packages (links, nothing downloaded); one also gets the wheel built from this
checkout, as a napari hub user would install it. Each run is a new process under Xvfb (or the current display):
start-up is process start -> napari window shown with the plugins discovered; the read is the plugin reader
opening a small NIfTI in that window (the first call imports the engine). Medians of --runs runs.

    python benchmarks/napari_startup.py [--runs 5] [--json results/napari_startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OWN = ("__editable__", "gcl_studio-", "gcl_engine", "gcl_app", "gcl_resources")
PROBE = r"""
import sys, time
t0 = float(sys.argv[1])
import napari
from qtpy.QtCore import QTimer
viewer = napari.Viewer()
shown = {}
def done():
    shown["start"] = time.time() - t0
    if len(sys.argv) > 2:
        t = time.time()
        viewer.open(sys.argv[2], plugin="gcl-studio")
        shown["read"] = time.time() - t
        shown["torch"] = "torch" in sys.modules
    print("RESULT", shown, flush=True)
    viewer.close()
QTimer.singleShot(0, done)
napari.run()
"""


def make_env(root: Path, wheel: Path | None) -> Path:
    venv = root / ("with" if wheel else "without")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    if wheel is not None:
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                        str(wheel)], check=True)
    deps = root / "deps"
    if not deps.exists():
        deps.mkdir()
        for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
            if not entry.name.startswith(OWN) and not entry.name.endswith(".pth"):
                (deps / entry.name).symlink_to(entry)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "zz_dependencies.pth").write_text(f"{deps}\n")
    return python


def one_run(python: Path, nifti: Path | None, workdir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    argv = [str(python), "-c", PROBE, repr(time.time())] + ([str(nifti)] if nifti else [])
    done = subprocess.run(argv, capture_output=True, text=True, cwd=workdir, env=env, timeout=600)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(f"napari did not start: {done.stderr[-2000:]}")
    import ast

    return ast.literal_eval(line.split(" ", 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):  # one X server for every run, started before any clock
        os.execvp("xvfb-run", ["xvfb-run", "-a", "-s", "-screen 0 1366x768x24", sys.executable, *sys.argv])
    root = Path(tempfile.mkdtemp(prefix="gcl-napari-startup-"))
    try:
        subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(root / "dist"), str(REPO)],
                       check=True, capture_output=True)
        wheel = next((root / "dist").glob("gcl_studio-*.whl"))
        without, with_plugin = make_env(root, None), make_env(root, wheel)
        sys.path.insert(0, str(REPO))
        from tests.app.synthetic import synthetic_ct, write_scan

        nifti = write_scan(root / "scan.nii.gz", synthetic_ct(5))
        rows: dict[str, list[dict]] = {"without GCL Studio": [], "with GCL Studio": []}
        for _ in range(args.runs):  # interleaved, so that a change of machine load hits both alike
            rows["without GCL Studio"].append(one_run(without, None, root))
            rows["with GCL Studio"].append(one_run(with_plugin, nifti, root))
        print(f"napari start-up (process start -> window shown), median of {args.runs} runs; "
              f"wheel {wheel.stat().st_size / 1e6:.1f} MB; load average {os.getloadavg()[0]:.1f}")
        print(f"{'environment':<20} {'start-up s':>11} {'min':>6} {'max':>6} {'first NIfTI read s':>19} {'torch':>6}")
        summary = {}
        for name, runs in rows.items():
            start = [r["start"] for r in runs]
            read = [r["read"] for r in runs if "read" in r]
            summary[name] = {"start_s": start, "read_s": read, "torch_loaded": [r.get("torch") for r in runs]}
            read_text = f"{statistics.median(read):.2f}" if read else "-"
            torch = "-" if not read else ("yes" if any(r.get("torch") for r in runs) else "no")
            print(f"{name:<20} {statistics.median(start):>11.2f} {min(start):>6.2f} {max(start):>6.2f} "
                  f"{read_text:>19} {torch:>6}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"runs": args.runs, "wheel_bytes": wheel.stat().st_size,
                                             "rows": summary}, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
