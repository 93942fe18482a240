"""The menu bar of the main window: File, Settings and Help, wired to the window's public methods.

Kept apart from the window so the window class stays about projects and layers; every action here is
one call of a window method, which is also what the tests and the self-test call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtGui import QAction, QKeySequence
from qtpy.QtWidgets import QMenu, QMenuBar


def _add(menu: QMenu, text: str, slot: Callable[[], Any], shortcut: Any = None, tip: str = "") -> QAction:
    action = QAction(text, menu)
    action.triggered.connect(lambda _checked=False: slot())
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
    menu.addAction(action)
    return action


def build_menus(bar: QMenuBar, window: Any) -> dict[str, QAction]:
    """Fill ``bar``; returns the actions that depend on an open project (enabled by the window)."""
    file_menu = bar.addMenu("&File")
    _add(file_menu, "New project from a scan folder…", window.ask_new_project, QKeySequence.StandardKey.New)
    _add(file_menu, "Open project…", window.ask_open_project, QKeySequence.StandardKey.Open)
    _add(file_menu, "Open the sample project", window.open_sample)
    window.recent_menu = file_menu.addMenu("Recent projects")
    window.recent_menu.aboutToShow.connect(window.fill_recent_menu)
    file_menu.addSeparator()
    needs_project = {
        "open_scans": _add(file_menu, "Open scans…", window.ask_open_scans, "Ctrl+Shift+O",
                           "Add NIfTI / NRRD / MHA files to the project"),
        "open_dicom": _add(file_menu, "Open DICOM folder…", window.ask_open_dicom),
        "save": _add(file_menu, "Save project", window.save_project, QKeySequence.StandardKey.Save,
                     "Write project.json and the annotations now (both also save themselves)"),
        "export": _add(file_menu, "Export masks…", window.ask_export_masks, "Ctrl+E",
                       "Write a labels layer as NIfTI with the source geometry"),
        "close": _add(file_menu, "Close project", window.close_project),
    }
    file_menu.addSeparator()
    _add(file_menu, "Quit", window.close, QKeySequence.StandardKey.Quit)
    settings_menu = bar.addMenu("&Settings")
    needs_project["settings"] = _add(settings_menu, "Project settings…", window.show_settings,
                                     tip="Device, slice cache folder and CPU threads of this project's jobs")
    help_menu = bar.addMenu("&Help")
    _add(help_menu, "About GCL Studio", window.show_about)
    _add(help_menu, "Documentation", window.show_docs)
    return needs_project
