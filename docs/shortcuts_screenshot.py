"""Screenshot for docs/quick_start.md: the annotate panel's keys listed in napari's Preferences > Shortcuts.

Run under an X server:
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/shortcuts_screenshot.py
Opened as a user opens it: the sample from File > Open Sample, the panel from Plugins > GCL Studio, then
File > Preferences and its Shortcuts page; the rows of GCL Studio's actions are scrolled into view.
Writes docs/quick_4c_shortcuts.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from first_hour_screenshots import annotate_panel, menu, viewer_with_sample
from plugin_screenshots import settle, wait_until

DOCS = Path(__file__).resolve().parent


def main() -> int:
    os.environ["GCL_STUDIO_PROJECT"] = str(Path(tempfile.mkdtemp(prefix="gcl_keys_")) / "project")
    from qtpy.QtWidgets import QApplication, QDialog, QTableWidget

    viewer, window = viewer_with_sample()
    panel = annotate_panel(viewer, window)
    wait_until(lambda: panel.devices_known, 120, "the panel's device probe")  # torch imported, before closing
    menu(window, "File", "Preferences")
    dialogs: list = []
    wait_until(lambda: bool(dialogs.extend(w for w in QApplication.topLevelWidgets()
                                           if isinstance(w, QDialog) and w.isVisible()) or dialogs),
               30, "the Preferences dialog")
    dialog = dialogs[0]
    pages = dialog._list
    [row] = [i for i in range(pages.count()) if pages.item(i).text().lower() == "shortcuts"]
    pages.setCurrentRow(row)
    settle(0.5)
    table = next(t for t in dialog.findChildren(QTableWidget) if t.isVisible())
    rows = [r for r in range(table.rowCount()) for c in range(table.columnCount())
            if table.item(r, c) is not None and "GCL Studio" in table.item(r, c).text()]
    if not rows:
        print("no GCL Studio row in the shortcuts table", file=sys.stderr)
        return 1
    table.scrollToItem(table.item(rows[-1], 0))
    table.selectRow(rows[0])
    settle(0.8)
    path = DOCS / "quick_4c_shortcuts.png"
    dialog.grab().save(str(path))
    print("saved", path, "rows", rows)
    dialog.close()
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
