"""Screenshots of what pre-training learnt, in the napari plugin, opened from the menus as a user does.

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/insight_screenshots.py RUN [FIT_RUN [SCAN]]

RUN is a pre-training run folder (e.g. ``gcl pretrain resources/sample_data/scans --out RUN``); FIT_RUN the run
whose pool the fit check compares SCAN with (the README's: abdominal CT only, SCAN a brain MR). The script
opens Plugins > GCL Studio > Data & pre-training, presses *Update map*, colours the map by position,
clicks a point (its volume opens at that slice), shows the Conflicts tab, then opens Annotate & fine-tune on
a scan from another body region and waits for the fit check. PNGs go to docs/insight_*.png.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugin_screenshots import settle, wait_until  # noqa: E402

DOCS = Path(__file__).resolve().parent


def trigger_menu(path: list[str]) -> None:
    """Click through the main window's menus by their visible texts (Plugins > GCL Studio > ...)."""
    from qtpy.QtWidgets import QApplication, QMainWindow

    window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow))
    actions = window.menuBar().actions()
    for depth, text in enumerate(path):
        action = next(a for a in actions if a.text().replace("&&", "\0").replace("&", "").replace("\0", "&") == text)
        if depth == len(path) - 1:
            action.trigger()
        else:
            action.menu().aboutToShow.emit()  # napari fills its plugin menus when they are about to show
            actions = action.menu().actions()
    settle(1.0)


def panel_of(cls):
    from qtpy.QtWidgets import QApplication

    return next(w for w in QApplication.allWidgets() if isinstance(w, cls))


def shot(viewer, name: str) -> None:
    settle(1.0)
    viewer.screenshot(str(DOCS / f"insight_{name}.png"), canvas_only=False)
    print("saved", DOCS / f"insight_{name}.png")


def main(run: Path, fit_run: Path, other_scan: Path) -> int:
    project = Path(tempfile.mkdtemp(prefix="gcl_insight_")) / "project"
    project.mkdir(parents=True)
    (project / "settings.json").write_text(json.dumps({"last_run": str(run), "pretrained": str(run / "last.pt")}))
    os.environ["GCL_STUDIO_PROJECT"] = str(project)
    import napari
    from gcl_app.widgets.data_panel import DataPanel
    from gcl_app.widgets.finetune_panel import FinetunePanel

    viewer = napari.Viewer(show=True, title="GCL Studio (napari plugin)")
    viewer.window.resize(1366, 740)
    trigger_menu(["Plugins", "GCL Studio", "Data & pre-training"])
    data = panel_of(DataPanel)
    insights = data.insights
    insights.update_button.click()
    wait_until(lambda: insights.map_view.picture is not None and not insights.runner.running, 600, "the map")
    insights.map_view.colour.setCurrentText("position")
    wait_until(lambda: set(insights.map_view.picture.colours) >= {"1/4", "4/4"}, 60, "the colouring")
    col, row = insights.map_view.picture.pixels[len(insights.fmap) // 2]
    index = insights.map_view.click_at(col, row)
    wait_until(lambda: insights.fmap.volume_id[index] in viewer.layers, 120, "the clicked volume")
    shot(viewer, "1_map")
    insights.tabs.setCurrentIndex(1)
    shot(viewer, "2_conflicts")
    viewer.open(str(other_scan), plugin="gcl-studio")
    trigger_menu(["Plugins", "GCL Studio", "Annotate & fine-tune"])
    annotate = panel_of(FinetunePanel)
    annotate.project.update(pretrained=str(fit_run / "last.pt"))  # a pool of one kind: the check is sharp there
    annotate.image_chooser.setCurrentText(viewer.layers[-1].name)
    annotate.attach()
    wait_until(lambda: annotate.fit_warning.verdict is not None, 300, "the fit check")
    print(annotate.fit_warning.text())
    shot(viewer, "3_fit_check")
    annotate.project.update(pretrained=str(run / "last.pt"))
    viewer.close()
    standalone(project)
    return 0


def standalone(project: Path) -> None:
    """The same project in the standalone app at 1366x768: File > Open project, the data tab scrolled to the map."""
    from gcl_app.standalone.window import MainWindow
    from qtpy.QtWidgets import QScrollArea

    window = MainWindow(config_folder=project.parent / "config")
    window.resize(1366, 740)
    window.show()
    window.open_project(str(project))
    settle(2.0)
    panels = window.workspace.panels
    panels.show("data")
    insights = panels.data.insights
    insights.update_button.click()
    wait_until(lambda: insights.map_view.picture is not None and not insights.runner.running, 600,
               "the map in the standalone app")
    insights.map_view.colour.setCurrentText("series")
    settle(1.5)
    area = next(w for w in window.findChildren(QScrollArea) if w.widget() is panels.data)
    area.ensureWidgetVisible(insights, 0, 0)
    settle(1.5)
    window.grab().save(str(DOCS / "insight_4_standalone.png"))
    print("saved", DOCS / "insight_4_standalone.png")
    window.close()


if __name__ == "__main__":
    brain = (Path.home() / ".cache/gcl-studio/bench-data/volumes/nilearn_icbm/"
             "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    run_arg = Path(sys.argv[1]).resolve()
    sys.exit(main(run_arg, Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else run_arg,
                  Path(sys.argv[3] if len(sys.argv) > 3 else brain).resolve()))
