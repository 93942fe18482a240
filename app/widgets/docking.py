"""How a GCL panel sits in a dock: its form scrolls, and the three panels of a window share one tab group.

Why: each panel is taller than a laptop screen (the Data panel alone needs ~1300 px). Stacked in one dock
column, napari's window grew to the sum of their heights and pushed the canvas off a 768 px screen. A panel
therefore builds its widgets inside a scroll area (its own minimum height is a few lines), and the plugin
joins every GCL dock of a window into one tab group, whatever order they were opened in from the menus.
"""

from __future__ import annotations

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QVBoxLayout, QWidget

PANEL_MIN_WIDTH = 380  # the widest form row (a file field and its button) stays readable
GCL_PANEL = "_gcl_panel"  # attribute set on every GCL panel, how the docks of one window find each other


def scroll_body(panel: QWidget) -> QWidget:
    """Put a scroll area into ``panel`` and return the widget inside it, where the panel lays out its form."""
    setattr(panel, GCL_PANEL, True)
    outer = QVBoxLayout(panel)
    outer.setContentsMargins(0, 0, 0, 0)
    area = QScrollArea(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setMinimumWidth(PANEL_MIN_WIDTH)
    body = QWidget(area)
    area.setWidget(body)
    outer.addWidget(area)
    panel.scroll_area = area
    return body


def tab_title(title: str) -> str:
    """A dock title as a tab shows it: a single "&" there marks a keyboard mnemonic (and vanishes)."""
    return title.replace("&&", "&").replace("&", "&&")


def gcl_docks(window: QMainWindow) -> list[QDockWidget]:
    return [dock for dock in window.findChildren(QDockWidget)
            if dock.widget() is not None and getattr(dock.widget(), GCL_PANEL, False)]


def join_tabs(panel: QWidget) -> None:
    """Tab ``panel``'s dock with the window's other GCL docks (same side) and bring it to the front."""
    dock = panel.parent()
    window = dock.parent() if isinstance(dock, QDockWidget) else None
    if not isinstance(window, QMainWindow):
        return
    docks = gcl_docks(window)
    for other in docks:
        other.setWindowTitle(tab_title(other.windowTitle()))
    area = window.dockWidgetArea(dock)
    first = next((d for d in docks if d is not dock and not d.isFloating() and d.isVisible()
                  and window.dockWidgetArea(d) == area), None)
    if first is not None and dock not in window.tabifiedDockWidgets(first):
        window.tabifyDockWidget(first, dock)
    dock.show()
    dock.raise_()


def join_tabs_when_docked(panel: QWidget) -> None:
    """napari creates the panel before its dock: join the tab group once the event loop has docked it."""
    timer = QTimer(panel)  # a child: never fires on a deleted panel
    timer.setSingleShot(True)
    timer.timeout.connect(lambda: join_tabs(panel))
    timer.start(0)
