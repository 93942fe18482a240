"""Files the app shows that are not Python: the icon and the user guide.

``resources/`` is installed as the data package ``gcl_resources`` (checkout, wheel, bundle) and holds the icons
beside the sample data; the engine already knows where its sample data folder is, so the icon is found from
there, and the README (a checkout's root, the bundle's ``_internal/``) one folder above.
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
