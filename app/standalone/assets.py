"""Files the app shows that are not Python: the icon and the user guide.

``resources/`` sits beside the packages in a source checkout and inside ``_internal/`` of the bundle;
the engine already knows where its sample data folder is, so both are found relative to that.
"""

from __future__ import annotations

from pathlib import Path

from gcl_engine import api

ICON_NAME = "gcl-studio.svg"


def resources_dir() -> Path | None:
    try:
        return api.sample_data_dir().parent
    except api.GCLError:
        return None


def icon_path() -> Path | None:
    root = resources_dir()
    path = root / "icons" / ICON_NAME if root is not None else None
    return path if path is not None and path.is_file() else None


def docs_path() -> Path | None:
    """The README (the user guide): at the root of a checkout, and at the root of ``_internal/``."""
    root = resources_dir()
    path = root.parent / "README.md" if root is not None else None
    return path if path is not None and path.is_file() else None
