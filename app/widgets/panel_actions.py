"""The annotate panel's shortcuts as napari actions, so users rebind them in napari's Preferences > Shortcuts.

A key bound with ``viewer.bind_key(..., overwrite=True)`` silently replaces whatever the user had on it and
cannot be changed anywhere. Registered with napari's action manager instead, each action is listed under the
viewer's key bindings, a binding the user saved in napari's settings wins over our default, and the buttons
can show the key that is bound now. The action reaches the panel of the viewer the key was pressed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PREFIX = "gcl-studio"
DEFAULT_KEYS = {"next": "Shift-N", "finetune": "Shift-F", "accept": "Shift-A", "toggle_preview": "Shift-V"}
DESCRIPTIONS = {  # short: napari's shortcuts table cuts long descriptions
    "next": "GCL Studio: next slice to paint",
    "finetune": "GCL Studio: fine-tune",
    "accept": "GCL Studio: accept the preview slice",
    "toggle_preview": "GCL Studio: show or hide the preview",
}

# the handlers of the panel open in each viewer, by the viewer model's id (not the proxy napari hands plugins)
_panels: dict[int, dict[str, Callable[[], None]]] = {}


def action_name(short: str) -> str:
    return f"{PREFIX}:{short}"


def _real(obj: Any) -> Any:
    return getattr(obj, "__wrapped__", obj)


def register(viewer: Any, handlers: dict[str, Callable[[], None]]) -> None:
    """Tie ``handlers`` (short name -> panel method) to ``viewer``'s keys; defaults only where the user's
    napari settings bind nothing to the action."""
    from napari.components import ViewerModel
    from napari.settings import get_settings
    from napari.utils.action_manager import action_manager

    _panels[id(_real(viewer))] = dict(handlers)
    saved = get_settings().shortcuts.shortcuts
    for short in handlers:
        name = action_name(short)
        action_manager.register_action(name, _command(short), DESCRIPTIONS[short], ViewerModel)
        if name not in saved and not action_manager._shortcuts.get(name):
            action_manager.bind_shortcut(name, DEFAULT_KEYS[short])


def unregister(viewer: Any) -> None:
    """The panel closed: its keys do nothing in this viewer any more (they stay napari actions)."""
    _panels.pop(id(_real(viewer)), None)


def current_key(short: str) -> str:
    """The key bound to the action now ('' when the user removed every binding)."""
    from napari.utils.action_manager import action_manager

    keys = action_manager._shortcuts.get(action_name(short)) or []
    if not keys:
        return ""
    text = str(keys[0])  # a saved binding comes back as napari's KeyBinding, written "Shift+T"
    return text if text.endswith("+") else text.replace("+", "-")  # written as the docs write keys: Shift-T


def on_change(callback: Callable[[], None], until: Any) -> None:
    """Call ``callback`` whenever a shortcut changes (the user rebinds one), until ``until`` is destroyed."""
    from napari.utils.action_manager import action_manager

    action_manager.events.shortcut_changed.connect(lambda _e: callback(), until=until)


def _command(short: str) -> Callable[[Any], None]:
    def run(viewer: Any) -> None:
        handler = _panels.get(id(_real(viewer)), {}).get(short)
        if handler is not None:
            handler()
    run.__name__ = f"gcl_studio_{short}"
    return run
