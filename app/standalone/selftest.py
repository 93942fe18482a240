"""``gcl-studio --self-test``: the whole loop once, through the real window, as a release check.

Opens the sample project (in a temporary folder, so the user's projects and recent list are left
alone), paints three slices of the liver from the bundled reference labels, fine-tunes for two steps
in the child process (the path a frozen bundle must get right), exports the preview with
``api.export_mask`` and checks that it reads back on the source grid. Prints one line and returns 0,
or names the step that failed and returns 1. Needs a display (Xvfb will do): napari draws on OpenGL.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from gcl_app.layers import META_KEY, NAMES_KEY, geometry_of, label_names_of, layer_affine
from gcl_app.widgets import annotation_layers as tied
from gcl_app.widgets.slices import show_slice
from qtpy.QtCore import QEventLoop, QPoint
from qtpy.QtGui import QCursor
from qtpy.QtWidgets import QApplication, QMainWindow

from gcl_engine import api

PAINTED_SLICES = 3
GEOMETRY_ATOL = 1e-4


class SelfTestError(RuntimeError):
    """A step of the self-test failed; the message says which and why."""


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Serve the event loop until ``predicate()``; :class:`SelfTestError` after ``timeout_s``."""
    app, deadline = QApplication.instance(), time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SelfTestError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)


def seconds_since_process_start() -> float | None:
    """How long ago this process started (Linux ``/proc``; None elsewhere): the start-up time users feel."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(stat[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def hover_canvas(window: Any) -> None:
    """Put the pointer over the scan: napari draws the brush outline where the pointer is (else in a corner)."""
    canvas = window.qt_viewer.canvas.native
    QCursor.setPos(canvas.mapToGlobal(QPoint(int(canvas.width() * 0.42), int(canvas.height() * 0.4))))
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)


def save_grab(window: QMainWindow, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        QApplication.processEvents()
        if not window.grab().save(str(path)):
            raise SelfTestError(f"could not write the screenshot {path}")


def open_sample(window: Any, project_dir: Path) -> Any:
    ready: list[str] = []
    window.workspace.ready.connect(ready.append)
    if not window.open_sample(str(project_dir)):
        raise SelfTestError("the sample project did not open")
    wait_until(lambda: bool(ready), 120, "the sample project to open")
    images = window.workspace.images()
    if not images:
        raise SelfTestError("the sample project opened without its CT (is the sample data bundled?)")
    return images[0]


def paint_liver(window: Any, image: Any) -> list[int]:
    """Copy the liver of the reference labels into the annotations on the slices where it is largest."""
    reference = next((layer for layer in window.viewer.layers if NAMES_KEY in layer.metadata
                      and "liver" in label_names_of(layer.metadata).values() and layer.metadata.get("gcl_role")
                      == "labels"), None)
    annotations = tied.find_layer(window.viewer, image, tied.ANNOTATIONS)
    if reference is None or annotations is None:
        raise SelfTestError("the sample's reference labels or the annotation layer are missing")
    liver = next(k for k, name in label_names_of(reference.metadata).items() if name == "liver")
    mask = np.asarray(reference.data) == liver
    slices = sorted(int(k) for k in np.argsort(mask.reshape(mask.shape[0], -1).sum(1))[-PAINTED_SLICES:])
    for k in slices:
        annotations.data[k] = mask[k].astype(annotations.data.dtype)
    annotations.refresh()
    panel = window.workspace.panels.finetune
    panel.autosaver.mark_dirty()
    panel.attach()  # the panel re-reads the annotated slices (it counts painting, not programmatic writes)
    show_slice(window.viewer, annotations, slices[len(slices) // 2])  # previews come for the slice in view
    return slices


def fine_tune(window: Any, steps: int) -> float:
    """Start a fine-tune from the panel and wait for the whole-volume preview; returns the seconds taken."""
    panel = window.workspace.panels.finetune
    panel.form.steps.value, panel.form.preview_every.value = steps, 1
    panel.form.continue_model.value = False
    outcome: dict[str, str] = {}
    panel.preview_updated.connect(lambda kind: outcome.setdefault("volume", kind) if kind == "volume" else None)
    panel.runner.failed.connect(lambda message: outcome.setdefault("failed", message))
    start = time.perf_counter()
    panel.finetune()
    wait_until(lambda: bool(outcome) or (panel.status.is_error and not panel.runner.running), 600,
               "the fine-tune and the whole-volume preview")
    if "volume" not in outcome:
        raise SelfTestError(f"fine-tuning failed: {outcome.get('failed') or panel.status.text()}")
    return time.perf_counter() - start


def export_and_check(window: Any, image: Any, out: Path) -> int:
    """Export the preview, read it back, compare with the source scan's grid; returns foreground voxels."""
    preview = tied.find_layer(window.viewer, image, tied.PREVIEW)
    if preview is None:
        raise SelfTestError("no preview layer after fine-tuning")
    labels = np.asarray(preview.data)
    geometry = geometry_of(image.metadata, layer_affine(image))
    out.parent.mkdir(parents=True, exist_ok=True)
    api.export_mask(labels, geometry, out, label_names_of(preview.metadata) or None,
                    model=window.workspace.project.current_model(),
                    sources=[(image.metadata.get(META_KEY) or {}).get("source") or api.sample_paths()["ct"]])
    back = api.load_volume(out)
    source = api.load_volume(api.sample_paths()["ct"])
    if back.array.shape != source.array.shape or not np.array_equal(back.array, labels):
        raise SelfTestError(f"the exported mask reads back as {back.array.shape}, not the scan's {source.array.shape}")
    for field in ("spacing", "origin", "direction"):
        if not np.allclose(getattr(back.geometry, field), getattr(source.geometry, field), atol=GEOMETRY_ATOL):
            raise SelfTestError(f"the exported mask's {field} {getattr(back.geometry, field)} differs from the "
                                f"scan's {getattr(source.geometry, field)}")
    return int(np.count_nonzero(labels))


def run_self_test(window: Any, steps: int = 2, screenshot_dir: Path | None = None) -> int:
    """The whole check; one line on stdout when it passes, the reason on stderr when it fails."""
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="gcl-studio-selftest-"))
    try:
        window.show()
        wait_until(window.isVisible, 30, "the window to show")
        started = seconds_since_process_start()
        save_grab(window, screenshot_dir / "standalone_start.png" if screenshot_dir else None)
        image = open_sample(window, work / "sample-project")
        slices = paint_liver(window, image)
        seconds = fine_tune(window, steps)
        voxels = export_and_check(window, image, work / "exports" / "selftest_mask.nii.gz")
        window.workspace.panels.finetune.go_next_unannotated()  # a slice where only the model's preview shows
        if screenshot_dir is not None:
            hover_canvas(window)
        save_grab(window, screenshot_dir / "standalone_main.png" if screenshot_dir else None)
        window.close()
    except (SelfTestError, api.GCLError, OSError, ValueError) as exc:
        print(f"gcl-studio self-test FAILED: {exc} (work folder kept: {work})", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    startup = f"window up {started:.1f} s after the process started; " if started is not None else ""
    print(f"gcl-studio self-test passed: {startup}sample CT {'x'.join(map(str, image.data.shape))}, slices {slices} "
          f"painted, {steps}-step fine-tune in a child process {seconds:.1f} s, mask exported and read back on the "
          f"source grid ({voxels} voxels labelled); {time.perf_counter() - start:.1f} s in all")
    return 0
