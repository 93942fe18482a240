"""The insight tools' file names inside a run folder's ``insight/`` and ``report/`` (named by run_layout)."""

from __future__ import annotations

from pathlib import Path

from gcl_engine.errors import OutputError
from gcl_engine.run_layout import RunLayout

EMBEDDINGS_FILE = "embeddings.npz"
FIT_FILE = "fit.npz"
MAP_CSV = "map.csv"
MAP_PNG = "map.png"
REPORT_FILE = "report.html"


def insight_dir(run: str | Path) -> Path:
    return RunLayout(run).insight


def map_csv(run: str | Path) -> Path:
    """The map the data panel shows: what ``gcl map RUN`` writes without ``--out``."""
    return insight_dir(run) / MAP_CSV


def report_html(run: str | Path) -> Path:
    """The page ``gcl report RUN`` writes without ``--out``."""
    return RunLayout(run).report / REPORT_FILE


def ensure_folder(folder: str | Path) -> Path:
    """Create an output folder, or say which one cannot be made and why."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the output folder ({exc.strerror or exc})") from exc
    return path
