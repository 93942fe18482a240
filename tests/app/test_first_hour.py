"""A clinician's first hour in napari (issue 16): what a new user met on screen, each checked as they meet it.

The panels are opened the way a user opens them, from napari's menus (``menu_action``), not through
``add_plugin_dock_widget``: the menus are where the layout, the titles and the first-open freeze were seen.
"""

from __future__ import annotations

import pytest
from qtpy.QtWidgets import QApplication, QDockWidget, QTabBar

from tests.app.qt_helpers import menu_action

PANELS = {"data": "Data & pre-training", "finetune": "Annotate & fine-tune", "export": "Predict & export"}
LAPTOP = (1366, 768)


def open_panel(viewer, qtbot, key: str):
    """Plugins > GCL Studio > <panel>, as a user clicks it; the panel once docked (and tabbed)."""
    title = f"{PANELS[key]} (GCL Studio)"
    menu_action(viewer.window._qt_window, "Plugins", "GCL Studio", title).trigger()
    qtbot.waitUntil(lambda: title in viewer.window.dock_widgets, timeout=10_000)
    panel = viewer.window.dock_widgets[title]
    QApplication.processEvents()  # the panel joins the tab group once docked
    return panel


def shown_text(text: str) -> str:
    """What a tab or menu shows for ``text``: "&&" is a literal "&", a single "&" is a hidden mnemonic mark."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


@pytest.mark.parametrize("order", [("data", "finetune", "export"), ("export", "finetune", "data")])
def test_all_three_panels_from_the_menu_fit_a_laptop_screen(make_napari_viewer, qtbot, order):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    panels = [open_panel(viewer, qtbot, key) for key in order]
    hint = window.minimumSizeHint().expandedTo(window.minimumSize())
    assert hint.width() <= LAPTOP[0] and hint.height() <= LAPTOP[1], (hint.width(), hint.height())
    window.resize(*LAPTOP)
    QApplication.processEvents()
    assert window.height() <= LAPTOP[1]
    # one tab group: the canvas keeps the screen's height, the newest panel is the tab in front
    docks = [panel.parent() for panel in panels]
    assert all(isinstance(dock, QDockWidget) for dock in docks)
    assert set(window.tabifiedDockWidgets(docks[0])) >= set(docks[1:])
    assert not docks[-1].visibleRegion().isEmpty()
    for panel in panels:
        panel.shutdown()


def test_tab_titles_show_the_ampersand_and_the_sample_is_named_once(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    panels = [open_panel(viewer, qtbot, key) for key in PANELS]
    tabs = [bar.tabText(i) for bar in window.findChildren(QTabBar) for i in range(bar.count())]
    shown = {shown_text(t) for t in tabs}
    assert {f"{title} (GCL Studio)" for title in PANELS.values()} <= shown, tabs
    entries = [shown_text(a.text()) for a in _sample_actions(window)]
    assert "Abdominal CT with reference labels (GCL Studio)" in entries, entries
    for panel in panels:
        panel.shutdown()


def _sample_actions(window):
    file_menu = menu_action(window, "File", "Open Sample").menu()
    file_menu.aboutToShow.emit()
    found = []
    for action in file_menu.actions():
        if action.menu() is not None:
            action.menu().aboutToShow.emit()
            found += action.menu().actions()
        else:
            found.append(action)
    return found
