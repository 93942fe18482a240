"""How long the napari window's event loop waits while GCL Studio works (the figures the GUI tests do not assert).

Two scenarios, each repeated, through the plugin's panels in a real napari viewer (needs an X server:
``xvfb-run -a``):
  * scan: the data panel scans a folder of N tiny NIfTI volumes and fills its tables;
  * browse: the annotate panel fine-tunes (child process, CPU, from scratch) on three painted slices of the
    sample CT while the user scrolls through the slices every 30 ms, until the whole-volume preview is shown.
A 10 ms Qt timer records every gap between its ticks; the table gives the median, 99th percentile and longest
gap, the share of gaps over 100 ms (a stall a user notices), the longest garbage-collector pass, and where the
UI thread was during the longest stalls.

    xvfb-run -a nice -n 5 .venv/bin/python benchmarks/ui_responsiveness.py [--quick] [--volumes 300] [--repeats 2]
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, Report, base_parser, be_nice, load_average, markdown_table

sys.path.insert(0, str(REPO))  # benchmarks.stall_monitor, tests.app.synthetic

NOTICEABLE_MS = 100.0


def wait_until(done, timeout_s: float) -> None:
    """Serve the event loop until ``done()`` (checked every 20 ms); a timeout is an error, not a figure."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop, poll = QEventLoop(), QTimer()
    deadline = time.monotonic() + timeout_s

    def check() -> None:
        if done() or time.monotonic() > deadline:
            loop.quit()

    poll.timeout.connect(check)
    poll.start(20)
    if not done():
        loop.exec()
    poll.stop()
    if not done():
        raise TimeoutError(f"not done after {timeout_s:.0f} s")


def measured(run) -> dict:
    from benchmarks.stall_monitor import StallMonitor

    load = load_average()[:1]
    monitor = StallMonitor()
    monitor.start()
    started = time.perf_counter()
    detail = run()
    seconds = time.perf_counter() - started
    monitor.stop()
    culprit = monitor.culprit().splitlines()
    return {"ticks": monitor.ticks, "median_ms": monitor.percentile_ms(50), "p99_ms": monitor.percentile_ms(99),
            "max_ms": monitor.max_gap_ms, "over_100ms": monitor.share_over(NOTICEABLE_MS),
            "gc_ms": monitor.longest_gc_ms, "seconds": seconds, "load_1min": load[0] if load else None,
            "culprit": culprit[-2].strip() if len(culprit) >= 2 else "", "detail": detail}


@contextlib.contextmanager
def docked(viewer, widget: str):
    """The plugin's panel ``widget`` in a dock for one scenario; shut down and undocked after it."""
    dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", widget)
    try:
        yield panel
    finally:
        panel.shutdown()
        viewer.window.remove_dock_widget(dock)


def scan_scenario(viewer, folder: Path, volumes: int) -> dict:
    with docked(viewer, "Data & pre-training") as panel:
        return _scan(panel, folder, volumes)


def _scan(panel, folder: Path, volumes: int) -> dict:
    wait_until(lambda: panel.devices_known, 120)  # torch's import is not part of the scan
    panel.folder.value = str(folder)

    def run() -> str:
        panel.scan_button.click()
        wait_until(lambda: panel.scan_result is not None and panel.scan_view.filled, 600)
        rows = panel.scan_view.volumes.rowCount()
        if rows != volumes:
            raise RuntimeError(f"{rows} rows listed, {volumes} volumes in the folder")
        return f"{rows} rows"

    return measured(run)


def browse_scenario(viewer, steps: int) -> dict:
    viewer.layers.clear()
    viewer.open_sample("gcl-studio", "ct")
    with docked(viewer, "Annotate & fine-tune") as panel:
        return _browse(viewer, panel, steps)


def _browse(viewer, panel, steps: int) -> dict:
    from gcl_app.widgets.slices import show_slice
    from qtpy.QtCore import QTimer

    panel.image_chooser.setCurrentText("sample CT")
    reference = viewer.layers["reference labels"].data
    annotations = panel.attach()
    panel.classes.set_names(["background", "liver"])
    for k in (8, 15, 22):
        annotations.data[k] = (reference[k] == 5).astype(annotations.data.dtype)
    annotations.refresh()
    panel.form.pretrained.value = ""
    panel.form.steps.value, panel.form.preview_every.value, panel.form.device.value = steps, 3, "cpu"
    show_slice(viewer, annotations, 15)
    wait_until(lambda: panel.devices_known, 120)
    n = annotations.data.shape[0]
    shown: list[int] = []
    whole_volume: list[str] = []
    panel.preview_updated.connect(lambda kind: kind == "volume" and whole_volume.append(kind))

    def browse() -> None:
        k = len(shown) % (2 * n)
        viewer.dims.set_current_step(0, k if k < n else 2 * n - 1 - k)
        shown.append(k)

    scroller = QTimer()
    scroller.setInterval(30)
    scroller.timeout.connect(browse)

    def run() -> str:
        panel.finetune_button.click()
        scroller.start()
        wait_until(lambda: bool(whole_volume), 900)
        scroller.stop()
        return f"{len(shown)} slice changes"

    return measured(run)


def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--volumes", type=int, default=300, help="volumes in the scanned folder")
    p.add_argument("--steps", type=int, default=60, help="fine-tuning steps of the browse scenario")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    be_nice(args.nice)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        sys.exit("no display: run under `xvfb-run -a` (napari cannot add layers offscreen)")
    if args.quick:
        args.volumes, args.steps, args.repeats = 60, 12, 1
    work = Path(tempfile.mkdtemp(prefix="gcl-bench-ui-"))
    os.environ["GCL_STUDIO_PROJECT"] = str(work / "project")

    import napari

    from tests.app.synthetic import many_volumes

    report = Report("ui_responsiveness", "Event-loop gaps of the napari window while GCL Studio works", args,
                    {"volumes": args.volumes, "steps": args.steps, "repeats": args.repeats})
    viewer = napari.Viewer(show=True)
    folder = many_volumes(work / "many", args.volumes)
    rows, runs = [], []
    for i in range(args.repeats):
        for name, result in ((f"scan {args.volumes} volumes", scan_scenario(viewer, folder, args.volumes)),
                             (f"fine-tune {args.steps} steps while browsing", browse_scenario(viewer, args.steps))):
            runs.append({"scenario": name, "repeat": i, **result})
            rows.append([name, i + 1, result["ticks"], f"{result['median_ms']:.0f}", f"{result['p99_ms']:.0f}",
                         f"{result['max_ms']:.0f}", f"{100 * result['over_100ms']:.1f}%", f"{result['gc_ms']:.0f}",
                         f"{result['seconds']:.1f}", result["load_1min"], result["detail"], result["culprit"]])
            print(rows[-1], flush=True)
    viewer.close()
    report.data["runs"] = runs
    report.add(f"napari {napari.__version__}, a 10 ms Qt timer; gaps in ms; 'over 100 ms' = share of gaps longer "
               f"than {NOTICEABLE_MS:.0f} ms; 'load' = 1-minute load average at the start; 'longest stall at' = "
               f"the UI thread's most frequent line while the loop was stalled past 60 ms.\n")
    report.add(markdown_table(["scenario", "run", "ticks", "median", "p99", "max", "over 100 ms", "longest gc",
                               "s", "load", "work", "longest stall at"], rows))
    report.write()


if __name__ == "__main__":
    main()
