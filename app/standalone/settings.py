"""Settings of a project that apply to every job whichever panel starts it: device, cache folder, threads.

They are stored in the project (``Project.update``: ``settings.json``), so a project reopened on
another machine keeps its choices. The panels build their own configs; :func:`apply_job_settings`
is the JobRunner's config hook that lays these settings over them just before the child starts:
CPU threads always, the slice cache folder for pre-training, and the device where a panel left it
on "auto" (an explicit device chosen in a panel wins).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gcl_app.project import Project
from gcl_app.widgets.common import start_worker
from gcl_app.widgets.pretrain_form import device_choices, job_threads
from qtpy.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from gcl_engine import api

DEFAULTS: dict[str, Any] = {"device": "auto", "cache_folder": "", "threads": 0}  # threads 0: automatic


def job_settings(project: Project) -> dict[str, Any]:
    return {key: project.get(key, default) for key, default in DEFAULTS.items()}


def apply_job_settings(settings: dict[str, Any], kind: str, config: Any) -> Any:
    """The config a job really runs with (frozen dataclasses: a modified copy)."""
    changes: dict[str, Any] = {"threads": int(settings["threads"]) or job_threads()}
    if settings["device"] != "auto" and getattr(config, "device", "auto") == "auto":
        changes["device"] = settings["device"]
    if kind == "pretrain" and settings["cache_folder"] and not config.cache:
        changes["cache"] = str(settings["cache_folder"])
    return dataclasses.replace(config, **changes)


class SettingsDialog(QDialog):
    """Edits the three settings; OK writes them into the project."""

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.project = project
        current = job_settings(project)
        self.device = QComboBox(self)
        self._set_device_choices([], current["device"])
        start_worker(api.describe_devices,
                     _connect={"returned": lambda d: self._set_device_choices(d, self.device_value())})
        self.cache = QLineEdit(str(current["cache_folder"]), self)
        self.cache.setPlaceholderText("inside each pre-training run (default)")
        browse = QPushButton("Choose…", self)
        browse.clicked.connect(self._browse)
        cache_row = QHBoxLayout()
        cache_row.addWidget(self.cache, 1)
        cache_row.addWidget(browse)
        self.threads = QSpinBox(self)
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText(f"automatic ({job_threads()})")
        self.threads.setValue(int(current["threads"]))
        self.threads.setToolTip("CPU threads of a training job; automatic: half the cores, so the window and "
                                "other programs keep theirs")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Device", self.device)
        form.addRow("Slice cache folder", cache_row)
        form.addRow("CPU threads", self.threads)
        form.addRow(buttons)
        self.setMinimumWidth(480)

    def _set_device_choices(self, devices: list[api.DeviceInfo], selected: str) -> None:
        self.device.clear()
        for label, value in device_choices(devices):
            self.device.addItem(label, value)
        index = self.device.findData(selected)
        self.device.setCurrentIndex(max(index, 0))

    def device_value(self) -> str:
        return str(self.device.currentData() or "auto")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Slice cache folder", self.cache.text())
        if folder:
            self.cache.setText(folder)

    def values(self) -> dict[str, Any]:
        cache = self.cache.text().strip()
        return {"device": self.device_value(), "cache_folder": str(Path(cache)) if cache else "",
                "threads": int(self.threads.value())}

    def accept(self) -> None:
        self.project.update(**self.values())
        super().accept()
