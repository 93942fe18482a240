"""What the UI thread does while a test drives the GUI.

:class:`UiThreadWatch` is what responsiveness tests assert on: it records every call the UI thread
makes into code that does long work (training, inference, image IO, preprocessing, network layers,
SimpleITK). That is a fact about where work runs, the same on a loaded CI machine as on a fast one,
unlike a time limit on the event loop (``benchmarks/ui_responsiveness.py`` measures that, and prints it).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import SimpleITK
import torch.nn.modules

import gcl_engine

_ENGINE = Path(gcl_engine.__file__).parent
# where long work lives: a call from the UI thread into any of these is a bug in where work runs
# (io's data classes, e.g. Geometry.from_dict, are not IO and stay callable; so is io/formats.py, a few bytes
# of magic read by napari's reader hook, which napari itself calls on the UI thread)
LONG_WORK_ROOTS = tuple(str(_ENGINE / name) + os.sep for name in (
    "training", "inference", "data", "models", "losses", "export"))
LONG_WORK_ROOTS += tuple(str(_ENGINE / "io" / f"{name}.py") for name in (
    "loading", "header_checks", "nibabel_io", "dicom", "writers", "folder_index", "sample_data",
    "atomic"))
LONG_WORK_ROOTS += tuple(str(_ENGINE / "insight" / f"{name}.py") for name in (  # not its config or file names
    "run_model", "pool", "projection", "folder_map", "map_image", "fit_check", "probe", "report", "jobs", "volumes",
    "conflicts", "svg_charts"))
LONG_WORK_ROOTS += tuple(str(Path(m.__file__).parent) + os.sep for m in (torch.nn.modules, SimpleITK))


class UiThreadWatch:
    """Records the UI thread's entries into long-work code (``LONG_WORK_ROOTS``) between start and stop.

    Only the entry from outside is recorded (not the calls it makes), with the UI-thread caller that
    made it, so a failure names the line to move into a worker.
    """

    def __init__(self, roots: tuple[str, ...] = LONG_WORK_ROOTS) -> None:
        self.roots = roots
        self.entries: list[str] = []
        self._previous = None

    def _is_long_work(self, filename: str) -> bool:
        return filename.startswith(self.roots)

    def _profile(self, frame, event: str, _arg) -> None:
        if event != "call" or not self._is_long_work(frame.f_code.co_filename):
            return
        if frame.f_code.co_name == "<module>":  # a module being imported (the api loads names lazily), not work
            return
        caller = frame.f_back
        if caller is not None and self._is_long_work(caller.f_code.co_filename):
            return
        where = f"{caller.f_code.co_filename}:{caller.f_lineno}" if caller is not None else "?"
        self.entries.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name} called from {where}")

    def start(self) -> UiThreadWatch:
        assert threading.current_thread() is threading.main_thread(), "start the watch on the UI thread"
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def stop(self) -> None:
        sys.setprofile(self._previous)

    def __enter__(self) -> UiThreadWatch:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def report(self) -> str:
        counts = Counter(self.entries)
        lines = [f"{n} x {entry}" for entry, n in counts.most_common(10)]
        return "the UI thread ran long-work code:\n" + "\n".join(lines)


def menu_action(window: Any, *path: str) -> Any:
    """The QAction a user clicks at ``path`` of the menu bar (texts without "&" mnemonics), e.g.
    ``menu_action(qt_window, "Plugins", "GCL Studio", "Annotate & fine-tune (GCL Studio)")``."""
    def plain(text: str) -> str:
        return text.replace("&&", "\0").replace("&", "").replace("\0", "&")

    actions = window.menuBar().actions()
    for i, name in enumerate(path):
        found = None
        for action in actions:
            if plain(action.text()) == name:
                found = action
                break
        assert found is not None, f"no menu entry {name!r} among {[plain(a.text()) for a in actions]}"
        if i == len(path) - 1:
            return found
        menu = found.menu()
        menu.aboutToShow.emit()  # napari fills some menus (Plugins, Open Sample) as they open
        actions = menu.actions()
    raise AssertionError("empty menu path")


def press_shortcut(viewer: Any, key: str) -> bool:
    """Press ``key`` the way napari dispatches a key typed into the canvas (its keymap handler: the viewer's
    and the active layer's bindings, class and instance); True when something was bound to it."""
    handler = viewer.window._qt_viewer._key_map_handler
    pressed = handler.press_key(key)
    handler.release_key(key)
    return pressed


def release(qtbot, windows: list) -> None:
    """Close and delete the windows now (emptying the list). A window is in reference cycles (its panels point
    back at it): left to a later full collection, its QtViewer fails the next ``make_napari_viewer``, which
    counts live QtViewer instances after a partial one."""
    import shiboken6

    while windows:
        window = windows.pop()
        if window.isVisible():
            window.close()
        window.deleteLater()
        qtbot.waitUntil(lambda w=window: not shiboken6.isValid(w), timeout=30_000)
        del window
    qtbot.wait(50)
    gc.collect()
