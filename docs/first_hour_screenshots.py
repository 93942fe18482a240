"""Screenshots for docs/quick_start.md: the napari plugin and the standalone app on a 1366x768 laptop screen.

Run under an X server (napari cannot render offscreen):
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/first_hour_screenshots.py
Everything is opened the way a user opens it, from the menus (File > Open Sample, Plugins > GCL Studio);
the training is real but short (a few dozen steps, so the pictures take a minute, not the recipe's
several): the previews show what a model that young predicts. PNGs go to docs/quick_*.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from plugin_screenshots import LIVER, PAINTED, settle, wait_until  # the same sample, painting and waits

DOCS = Path(__file__).resolve().parent
LAPTOP = (1366, 768)


def plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def menu(window, *path: str):
    """Click through the menu bar as a user does; returns the last action (triggered)."""
    actions = window.menuBar().actions()
    for name in path:
        [action] = [a for a in actions if plain(a.text()) == name]
        if action.menu() is not None:
            action.menu().aboutToShow.emit()
            actions = action.menu().actions()
    action.trigger()
    return action


def shot(widget, name: str) -> None:
    settle(0.8)
    path = DOCS / f"quick_{name}.png"
    widget.grab().save(str(path))
    print("saved", path)


def viewer_with_sample():
    """napari at a laptop's size with the sample CT opened from File > Open Sample: (viewer, its Qt window)."""
    import napari

    viewer = napari.Viewer(show=True, title="napari with GCL Studio")
    window = viewer.window._qt_window
    window.resize(*LAPTOP)
    menu(window, "File", "Open Sample", "Abdominal CT with reference labels (GCL Studio)")
    wait_until(lambda: "sample CT" in viewer.layers, 60, "the sample CT")
    return viewer, window


def annotate_panel(viewer, window):
    """The Annotate panel from Plugins > GCL Studio, on the sample CT, with the classes background and liver."""
    menu(window, "Plugins", "GCL Studio", "Annotate & fine-tune (GCL Studio)")
    wait_until(lambda: "Annotate & fine-tune (GCL Studio)" in viewer.window.dock_widgets, 30, "the Annotate panel")
    panel = viewer.window.dock_widgets["Annotate & fine-tune (GCL Studio)"]
    panel.image_chooser.setCurrentText("sample CT")
    panel.annotate_button.click()
    panel.classes.set_names(["background", "liver"])
    return panel


def paint_liver(viewer, panel):
    """What a user paints with the brush on the slices PAINTED, taken from the reference for the pictures."""
    annotations = panel.layer("annotations")
    reference = viewer.layers["reference labels"].data
    for k in PAINTED:
        annotations.data[k] = (reference[k] == LIVER).astype(annotations.data.dtype)
    annotations.data = annotations.data
    return annotations


def plugin(work: Path) -> None:
    os.environ["GCL_STUDIO_PROJECT"] = str(work / "project")
    from gcl_app.widgets.slices import show_slice

    viewer, window = viewer_with_sample()

    menu(window, "Plugins", "GCL Studio", "Data & pre-training (GCL Studio)")
    wait_until(lambda: "Data & pre-training (GCL Studio)" in viewer.window.dock_widgets, 30, "the Data panel")
    data = viewer.window.dock_widgets["Data & pre-training (GCL Studio)"]
    wait_until(lambda: bool(data.folder_path()), 30, "the sample folder filled in")
    data.scan_button.click()
    wait_until(lambda: data.scan_result is not None and data.scan_view.filled, 120, "the scan")
    shot(window, "1_plugin_scan")
    data.form.preset.value = "quick (CPU)"
    data.form.steps.value = 60  # short, for the pictures
    data.start_button.click()
    wait_until(lambda: not data.runner.running and data.project.pretrained_checkpoint() is not None, 900,
               "pre-training")
    data.plot.flush()
    data.scroll_area.ensureWidgetVisible(data.plot_note, 0, 0)  # the user scrolls down to the curves
    shot(window, "2_plugin_pretrained")

    panel = annotate_panel(viewer, window)
    annotations = paint_liver(viewer, panel)
    show_slice(viewer, annotations, 15)
    shot(window, "3_plugin_painted")
    panel.form.steps.value = 40
    updates: list[str] = []
    panel.preview_updated.connect(updates.append)
    panel.finetune_button.click()
    wait_until(lambda: "volume" in updates, 900, "the whole-volume preview")
    show_slice(viewer, annotations, 12)
    shot(window, "4_plugin_preview")

    menu(window, "Plugins", "GCL Studio", "Predict & export (GCL Studio)")
    wait_until(lambda: "Predict & export (GCL Studio)" in viewer.window.dock_widgets, 30, "the Export panel")
    export = viewer.window.dock_widgets["Predict & export (GCL Studio)"]
    export.image_chooser.setCurrentText("sample CT")
    export.predict_button.click()
    wait_until(lambda: "sample CT prediction" in viewer.layers and "Prediction of" in export.status.text(), 300,
               "the prediction")
    export.export_mask_button.click()
    wait_until(lambda: "written" in export.status.text(), 120, "the export")
    shot(window, "5_plugin_export")
    for p in (data, panel, export):
        p.shutdown()
    viewer.close()


class Answers:
    """The standalone window's questions, answered as the walk-through says (a native dialog would block)."""

    def __init__(self, scans: str, project: str) -> None:
        self.scans, self.project = scans, project

    def folder(self, title: str, start: str = "") -> str:
        return self.scans

    def new_folder(self, title: str, default: str) -> str:
        return self.project

    def files(self, title: str, start: str = "") -> list[str]:
        return []

    def save_file(self, title: str, default: str) -> str:
        return default

    def confirm(self, title: str, text: str) -> bool:
        return True

    def error(self, title: str, text: str) -> None:
        print("error:", title, text)


def standalone(work: Path) -> None:
    from gcl_app.standalone.main import create_app
    from gcl_app.standalone.window import MainWindow

    from gcl_engine import api

    os.environ["GCL_STUDIO_CONFIG_DIR"] = str(work / "config")
    create_app()
    window = MainWindow(config_folder=work / "config")
    window.prompts = Answers(str(api.sample_paths()["scans"]), str(work / "Liver study"))
    window.resize(*LAPTOP)
    window.show()
    settle(1.5)
    shot(window, "6_standalone_start")
    opened: list[str] = []
    window.workspace.ready.connect(opened.append)
    window.start_page.buttons["new"].click()
    wait_until(lambda: bool(opened), 120, "the new project")
    data = window.workspace.panels.data
    wait_until(lambda: data.scan_result is not None and data.scan_view.filled, 120, "the scan")
    window.workspace.panels.show("finetune")
    shot(window, "7_standalone_project")
    window.close()


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="gcl_quick_"))
    plugin(work)
    standalone(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
