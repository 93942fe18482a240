"""Screenshot for docs/quick_start.md: the model's uncertainty overlay in the napari plugin, at 1366x768.

Run under an X server:
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/uncertainty_screenshot.py
Opened as a user opens it (File > Open Sample, Plugins > GCL Studio > Annotate & fine-tune); three liver
slices painted (taken from the sample's reference labels), a short real fine-tune from no pre-training, then
*Show uncertainty* ticked, then the 3D view. Writes docs/quick_4d_uncertainty.png,
quick_4f_finetune_curve.png (the panel scrolled to its fine-tuning curve) and quick_4e_3d.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from first_hour_screenshots import annotate_panel, paint_liver, shot, viewer_with_sample
from plugin_screenshots import wait_until


def main() -> int:
    os.environ["GCL_STUDIO_PROJECT"] = str(Path(tempfile.mkdtemp(prefix="gcl_uncertainty_")) / "project")
    from gcl_app.widgets import annotation_layers as tied
    from gcl_app.widgets.slices import show_slice

    viewer, window = viewer_with_sample()
    viewer.layers["reference labels"].visible = False
    panel = annotate_panel(viewer, window)
    annotations = paint_liver(viewer, panel)
    panel.form.steps.value = 60
    updates: list[str] = []
    panel.preview_updated.connect(updates.append)
    panel.finetune_button.click()
    wait_until(lambda: "volume" in updates, 900, "the whole-volume preview")
    panel.show_uncertainty.setChecked(True)
    wait_until(lambda: tied.find_layer(viewer, panel.image, tied.UNCERTAINTY) is not None, 300, "the uncertainty")
    show_slice(viewer, annotations, 12)
    shot(window, "4d_uncertainty")
    panel.curve.flush()
    panel.scroll_area.ensureWidgetVisible(panel.curve, 0, 0)  # the user scrolls down to the curve
    shot(window, "4f_finetune_curve")
    panel.scroll_area.verticalScrollBar().setValue(0)
    panel.show_uncertainty.setChecked(False)
    viewer.layers["sample CT"].visible = False  # the structures alone, as a user looks at them in 3D
    panel.view_3d.setChecked(True)
    viewer.camera.angles = (0.0, 30.0, 60.0)
    shot(window, "4e_3d")
    panel.shutdown()
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
