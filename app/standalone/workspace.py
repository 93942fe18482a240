"""The open project of a window: its folder, panels, scans and the restore of annotations.

Opening a project is a small pipeline: re-point the panels (a fresh :class:`PanelSet`), read the
scans listed in ``project.json`` in a worker thread, then tie each image to its autosaved
annotations through the fine-tune panel (the same code that restores them in the plugin). ``ready``
fires at the end, so callers (menus, tests, the self-test) wait on one signal, never on a sleep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gcl_app.layers import META_KEY, ROLE_KEY
from gcl_app.project import Project, safe_name
from gcl_app.standalone import project_file as pf
from gcl_app.standalone.panels import PanelSet
from gcl_app.standalone.scans import ScanLoader
from gcl_app.standalone.sessions import RecentProjects, SessionLock
from gcl_app.widgets import annotation_layers as tied
from gcl_app.widgets.common import start_worker
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QMainWindow

from gcl_engine import api

SAMPLE_CLASSES = ["background", "liver"]


def first_volume(folder: str) -> str | None:
    """The volume a new project opens first (worker thread: reads headers): a still 3D volume, the one with
    the most slices; a time series (a cardiac cine's slider steps through phases of one slice) only if there
    is nothing else."""
    volumes = api.scan_folder(folder).volumes
    if not volumes:
        return None
    still = [v for v in volumes if v.n_time_points <= 1 and not v.slice_phase]
    return max(still or volumes, key=lambda v: (v.n_slices or (v.shape[0] if v.shape else 0))).source


def role_of(layer: Any) -> str:
    return str(layer.metadata.get(ROLE_KEY, ""))


def source_of(layer: Any) -> str:
    return str((layer.metadata.get(META_KEY) or {}).get("source") or "")


class Workspace(QObject):
    """One window's project; ``ready(folder)`` once a project (or added scans) finished opening."""

    ready = Signal(str)
    message = Signal(str)
    changed = Signal()  # a project was opened or closed

    def __init__(self, window: QMainWindow, viewer: Any, config_folder: Path | None = None) -> None:
        super().__init__(window)
        self.window, self.viewer = window, viewer
        self.recent = RecentProjects(config_folder)
        self.lock = SessionLock(config_folder)
        self.project: Project | None = None
        self.panels: PanelSet | None = None
        self.state = pf.ProjectFile()
        self._failed: set[str] = set()
        self.loader = ScanLoader(viewer, self)
        self.loader.failed.connect(self._on_load_failed)
        self.loader.loaded.connect(self._on_loaded)
        self._pending: set[str] = set()  # scans of the load in progress, kept in project.json meanwhile
        self._batch: list[Any] = []  # layers of the load in progress
        self._activate_new = False  # scans the user just opened become the image being annotated
        self._added: set[str] = set()  # scans the user just gave to Open: not kept in project.json if unreadable
        self._batch_failures: list[str] = []  # what the load in progress could not open, said again at its end
        self.loader.done.connect(self._after_load)

    # --- opening and closing -------------------------------------------------------------------

    def _enter(self, folder: Path, state: pf.ProjectFile, settings: dict[str, Any] | None = None) -> None:
        self.close()
        self.project = Project(folder)
        (self.project.root / "exports").mkdir(exist_ok=True)
        if settings:
            self.project.update(**settings)  # before the panels, which read them when built
        self.state, self._failed, self._pending = state, set(), set()
        self.state.app_version = api.__version__
        self.panels = PanelSet(self.window, self.viewer, self.project)
        pf.write_project_file(self.project.root, self.state)
        self.recent.add(self.project.root)
        self.lock.hold(self.project.root)
        self.changed.emit()

    def open_project(self, folder: str | Path) -> str:
        """Open a project folder; returns "" or why it could not be opened."""
        folder = Path(folder)
        if not folder.is_dir():
            self.recent.remove(folder)
            return f"{folder} does not exist (any more)."
        if not (pf.is_project(folder) or (folder / "settings.json").is_file()):
            return f"{folder} is not a GCL Studio project (no project.json in it)."
        self._enter(folder, pf.read_project_file(folder))
        self._load(self.state.scans)
        return ""

    def new_project(self, scan_folder: str | Path, project_dir: str | Path | None = None) -> str:
        """A project on a scan folder: the data panel scans it; the first volume opens for annotation."""
        scans = Path(scan_folder).resolve()
        if not scans.is_dir():
            return f"{scans} is not a folder."
        folder = Path(project_dir) if project_dir else pf.new_project_dir(scans.name)
        self._enter(folder, pf.ProjectFile(), {"scan_folder": str(scans)})
        self.panels.data.scan()
        self.message.emit(f"Looking for scans in {scans} …")
        start_worker(first_volume, str(scans), _connect={"returned": self._open_first,
                                                         "errored": lambda e: self._open_first(None, str(e))})
        return ""

    def _open_first(self, path: str | None, reason: str = "") -> None:
        if path is None:
            self.message.emit(f"No usable scan in the folder. {reason}".strip())
            self.ready.emit(str(self.project.root) if self.project else "")
            return
        self.open_scans([path])

    def open_sample(self, project_dir: str | Path | None = None) -> str:
        """The user's sample project: reopened when it exists, else made on the bundled sample CT."""
        folder = Path(project_dir) if project_dir else pf.sample_project_dir()
        if pf.is_project(folder):
            return self.open_project(folder)
        paths = api.sample_paths()
        state = pf.ProjectFile()
        state.add_scan(paths["ct"])
        state.add_scan(paths["ct_labels"], visible=False)
        self._enter(folder, state, {"scan_folder": str(paths["scans"])})
        self.panels.finetune.classes.set_names(SAMPLE_CLASSES)
        self._load(self.state.scans)
        return ""

    def close(self) -> None:
        """Save and close the open project (the window then shows the start page)."""
        if self.project is None:
            return
        self.loader.cancel()
        self.save_state()
        self.panels.shutdown()  # writes unsaved annotations synchronously, into this project
        self.panels = None
        self.viewer.layers.clear()
        self.project = None
        self.changed.emit()

    # --- scans -------------------------------------------------------------------------------

    def open_scans(self, paths: list[str]) -> None:
        known = {entry.path for entry in self.state.scans}
        for path in paths:
            self.state.add_scan(path)
        self._activate_new = True
        new = [entry for entry in self.state.scans if entry.path not in known]
        self._added = {entry.path for entry in new}
        self._load(new)

    def _load(self, entries: list[pf.ScanEntry]) -> None:
        if not entries:
            self._after_load()
            return
        self.message.emit(f"Opening {len(entries)} scan(s) …")
        self._batch, self._pending, self._batch_failures = [], {e.path for e in entries}, []
        self.loader.load([(e.path, pf.resolve_path(e.path), e.visible) for e in entries])

    def _on_loaded(self, key: str, layer: Any) -> None:
        self._pending.discard(key)
        self._batch.append(layer)

    def _on_load_failed(self, key: str, reason: str) -> None:
        self._pending.discard(key)
        text = f"Could not open {pf.resolve_path(key)}: {reason}"
        self._batch_failures.append(text)
        if key in self._added:  # the user just chose it: never stored, never retried on every reopen
            self.state.scans = [entry for entry in self.state.scans if entry.path != key]
        else:  # listed by the project (a drive not mounted now, say): kept, not the user's removal
            self._failed.add(key)
        self.message.emit(text)

    def images(self) -> list[Any]:
        return [layer for layer in self.viewer.layers if role_of(layer) == "image"]

    def _after_load(self) -> None:
        """Tie every image that has autosaved annotations to them; the active image last (it stays tied)."""
        if self.project is None:
            return
        images = self.images()
        names = [image.name for image in images]
        new_images = [layer.name for layer in self._batch if role_of(layer) == "image"]
        active = self.state.active if self.state.active in names else (names[0] if names else "")
        if self._activate_new and new_images:
            active, self._activate_new = new_images[-1], False
        saved = [i for i in images if self.project.annotation_path(tied.volume_id_of(i)).is_file()]
        for image in [*(i for i in saved if i.name != active), *(i for i in images if i.name == active)]:
            if tied.find_layer(self.viewer, image, tied.ANNOTATIONS) is None or image.name == active:
                self.panels.finetune.image_chooser.setCurrentText(image.name)
                self.panels.finetune.attach()
        self.state.active = active
        self._added = set()
        self.save_state()
        if new_images:  # the canvas was sized before the docks took their share: fit what was opened
            self.viewer.reset_view()
        failures = " ".join(self._batch_failures)  # said last, so the summary never hides them
        self.message.emit(f"Project {self.project.root.name}: {len(images)} image(s) open."
                          + (f" {failures}" if failures else ""))
        self.ready.emit(str(self.project.root))

    # --- saving and export -----------------------------------------------------------------

    def _sync_state(self) -> None:
        """Scans in project.json = file layers still open (visibility kept) + those that failed to open."""
        present = {pf.store_path(source_of(layer)): layer for layer in self.viewer.layers
                   if role_of(layer) in ("image", "labels") and source_of(layer)}
        kept = []
        for entry in self.state.scans:
            layer = present.pop(entry.path, None)
            if layer is not None:
                kept.append(pf.ScanEntry(entry.path, bool(layer.visible)))
            elif entry.path in self._failed or entry.path in self._pending:
                kept.append(entry)  # not open (unreadable now, or still loading): not the user's removal
        kept += [pf.ScanEntry(path, bool(layer.visible)) for path, layer in present.items()]
        self.state.scans = kept
        image = self.panels.finetune.image if self.panels else None
        if image is not None and image in self.viewer.layers:
            self.state.active = image.name

    def save_state(self) -> Path | None:
        """project.json (which scans are open, which image is annotated)."""
        if self.project is None:
            return None
        self._sync_state()
        return pf.write_project_file(self.project.root, self.state)

    def save(self) -> Path | None:
        """File ▸ Save: project.json now, and the annotations (written in the background by the autosaver)."""
        path = self.save_state()
        if self.panels is not None and self.panels.finetune.autosaver.dirty:
            self.panels.finetune.autosaver.save_now()
        return path

    def export_layer_choice(self) -> Any | None:
        """What File ▸ Export masks writes: the selected labels layer, else the preview, else annotations."""
        active = self.viewer.layers.selection.active
        if active is not None and type(active).__name__ == "Labels":
            return active
        image = self.panels.finetune.image if self.panels else None
        for role in (tied.PREVIEW, tied.ANNOTATIONS):
            layer = tied.find_layer(self.viewer, image, role) if image is not None else None
            if layer is not None:
                return layer
        return next((layer for layer in self.viewer.layers if type(layer).__name__ == "Labels"), None)

    def default_export_path(self, layer: Any) -> Path:
        return self.project.root / "exports" / f"{safe_name(layer.name)}.nii.gz"

    def export_masks(self, layer: Any, path: str | Path) -> None:
        """Through the Predict & export panel (its worker, its status line, the source geometry)."""
        panel = self.panels.export
        panel.labels_chooser.setCurrentText(layer.name)
        panel.mask_path.value = str(path)  # after the chooser, which suggests a path of its own
        self.panels.show("export")
        panel.export_mask()
