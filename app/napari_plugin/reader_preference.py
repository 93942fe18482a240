"""Make GCL Studio napari's reader for the scan suffixes it owns, unless the user chose another one.

Why: napari's own reader also claims every suffix, so each File > Open of a valid NIfTI asked "Choose reader"
(and napari's choice reads it without patient-space placement). npe2 has no reader priority, and napari
consults only its reader preferences (Preferences > Plugins > File extension readers). A GCL panel or the
sample data, once used, fill in the patterns of this plugin's reader that the user has not assigned: the user's
own choices are never replaced, and they can be changed there.
"""

from __future__ import annotations

from importlib import resources

PLUGIN = "gcl-studio"


def reader_patterns() -> list[str]:
    """The filename patterns of this plugin's reader contribution (the manifest is the one list)."""
    from npe2 import PluginManifest

    path = resources.files("gcl_app.napari_plugin") / "napari.yaml"
    manifest = PluginManifest.from_file(str(path))
    return [p for reader in manifest.contributions.readers or [] for p in reader.filename_patterns]


def claim_scan_patterns() -> list[str]:
    """Set this plugin as the reader of every unassigned pattern; returns the patterns it set."""
    from napari.settings import get_settings

    plugins = get_settings().plugins
    current = dict(plugins.extension2reader)
    claimed = [p for p in reader_patterns() if p not in current]
    if claimed:
        plugins.extension2reader = {**current, **dict.fromkeys(claimed, PLUGIN)}
    return claimed
