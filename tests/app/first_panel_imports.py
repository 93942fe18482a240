"""Run by test_first_hour in a fresh interpreter: open one GCL panel from napari's menu, as the first thing a
user does, and print (as JSON) which thread first imported each heavy library, once the panel knows its devices.

A fresh interpreter because the test process has imported everything long before.
"""

from __future__ import annotations

import json
import sys
import threading
import time

HEAVY = ("torch", "SimpleITK", "matplotlib", "monai", "nibabel", "scipy", "sklearn")
first: dict[str, str] = {}


class _Recorder:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in HEAVY and top not in first:
            first[top] = threading.current_thread().name
        return None


def main(title: str) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    QApplication.processEvents()
    already = [name for name in HEAVY if name in sys.modules]  # napari's own (scipy, say): not ours
    sys.meta_path.insert(0, _Recorder())
    actions = viewer.window._qt_window.menuBar().actions()
    for name in ("Plugins", "GCL Studio", title):
        [action] = [a for a in actions if a.text().replace("&&", "\0").replace("&", "").replace("\0", "&") == name]
        if action.menu() is not None:
            action.menu().aboutToShow.emit()
            actions = action.menu().actions()
    action.trigger()
    panel = viewer.window.dock_widgets[title]
    # a panel with a device probe: until it is done; another: a second of the event loop (its first paint)
    deadline = time.monotonic() + (120 if hasattr(panel, "devices_known") else 1)
    while not getattr(panel, "devices_known", False) and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    print(json.dumps({"first": first, "already": already, "devices_known": getattr(panel, "devices_known", None)}))
    panel.shutdown()
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1])
