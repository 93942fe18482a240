"""Walk the napari plugin through the whole flow on the bundled sample CT and save screenshots.

Run under an X server (napari cannot render offscreen):
    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python docs/plugin_screenshots.py
It drives the panels the way a user clicks them: sample CT, scan the sample scans, quick pre-training,
three painted liver slices, fine-tune with the live preview, whole-volume preview, NIfTI export
(read back with SimpleITK to check the geometry). PNGs go to docs/plugin_*.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).resolve().parent
LIVER, PAINTED = 5, (9, 15, 21)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.02)


def settle(seconds: float = 0.7) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def shot(viewer, name: str) -> None:
    settle()
    viewer.screenshot(str(DOCS / f"plugin_{name}.png"), canvas_only=False)
    print("saved", DOCS / f"plugin_{name}.png")


def pretrain(viewer) -> None:
    dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Data & pre-training")
    panel.scan_button.click()
    wait_until(lambda: panel.scan_result is not None, 120, "the scan")
    panel.form.preset.value = "quick (CPU)"
    panel.start_button.click()
    wait_until(lambda: panel.progress.bar.maximum() > 1 and panel.progress.bar.value() >= 100, 600,
               "pre-training progress")
    shot(viewer, "1_pretrain")
    wait_until(lambda: not panel.runner.running, 600, "the end of pre-training")
    print(panel.status.text())


def finetune(viewer):
    dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Annotate & fine-tune", tabify=True)
    dock.raise_()
    panel.image_chooser.setCurrentText("sample CT")
    annotations = panel.attach()
    panel.classes.set_names(["background", "liver"])
    reference = viewer.layers["reference labels"].data
    for k in PAINTED:  # what a user paints with the brush, taken from the reference for the demo
        annotations.data[k] = (reference[k] == LIVER).astype(annotations.data.dtype)
    annotations.data = annotations.data  # one data event, as a brush stroke would send
    from gcl_app.widgets.slices import show_slice

    show_slice(viewer, annotations, 15)
    shot(viewer, "2_painted")
    slices_seen = []
    panel.preview_updated.connect(slices_seen.append)
    panel.finetune_button.click()
    wait_until(lambda: "slices" in slices_seen, 600, "the first preview")
    wait_until(lambda: slices_seen.count("slices") >= 3, 600, "later previews")
    shot(viewer, "3_live_preview")
    wait_until(lambda: "volume" in slices_seen, 600, "the whole-volume preview")
    show_slice(viewer, annotations, 12)
    shot(viewer, "4_volume_preview")
    return panel


def export(viewer, out_dir: Path) -> Path:
    dock, panel = viewer.window.add_plugin_dock_widget("gcl-studio", "Predict & export", tabify=True)
    dock.raise_()
    panel.labels_chooser.setCurrentText("sample CT preview")
    target = out_dir / "liver_preview.nii.gz"
    panel.mask_path.value = str(target)
    panel.export_mask_button.click()
    wait_until(lambda: "written" in panel.status.text(), 120, "the NIfTI export")
    shot(viewer, "5_export")
    return target


def check_export(target: Path) -> None:
    import SimpleITK as sitk

    from gcl_engine import api

    written, source = sitk.ReadImage(str(target)), sitk.ReadImage(str(api.sample_paths()["ct"]))
    for getter in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        a, b = getattr(written, getter)(), getattr(source, getter)()
        assert all(abs(x - y) < 1e-4 for x, y in zip(a, b, strict=True)), (getter, a, b)
    print("export read back by SimpleITK with the source geometry:", written.GetSize(), written.GetSpacing())


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="gcl_demo_"))
    os.environ["GCL_STUDIO_PROJECT"] = str(work / "project")
    import napari

    viewer = napari.Viewer(show=True, title="GCL Studio (napari plugin)")
    viewer.window.resize(1800, 1150)
    viewer.open_sample("gcl-studio", "ct")
    pretrain(viewer)
    finetune(viewer)
    target = export(viewer, work)
    check_export(target)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
