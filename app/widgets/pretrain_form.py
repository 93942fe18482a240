"""The pre-training form (magicgui): method, preset, device and the few sizes that matter.

Presets exist because the right sizes differ by two orders of magnitude between a laptop CPU and a
GPU; the user picks one and may still edit any field (the preset then reads "custom").
"""

from __future__ import annotations

import dataclasses
import gc
from typing import Any

from gcl_app.widgets.common import start_worker
from magicgui.widgets import ComboBox, Container, SpinBox

from gcl_engine import api

PRESETS: dict[str, dict[str, int]] = {
    # measured: 60 steps take 15 s on one core on the bundled sample scans; 150 steps stay under a minute
    "quick (CPU)": {"steps": 150, "size": 64, "base_channels": 8, "levels": 4, "checkpoint_every": 50},
    "full (GPU)": {"steps": 3000, "size": 224, "base_channels": 32, "levels": 5, "checkpoint_every": 250},
}
CUSTOM = "custom"
SIZE_FIELDS = ("steps", "size", "base_channels", "levels", "checkpoint_every")


def job_threads() -> int:
    """CPU threads of a job (training child, in-process prediction): the engine's rule, half the cores."""
    return api.default_threads()


def load_devices() -> list[api.DeviceInfo]:
    """A panel's worker body when it opens: the device list, and this process's torch settled for a window.

    ``describe_devices`` imports torch now rather than during a job: measured, the import holds the GIL
    (dlopen of libtorch) for ~0.4 s. Torch work done in this process (whole-volume previews, predictions,
    ONNX export, all in thread workers) then gets the engine's default threads, like a training child: measured on two
    loaded cores, with torch's default of every core the preview of the sample CT took 2.5 s instead of
    0.26 s and froze the window for up to 190 ms at a time while the user browsed slices.
    """
    devices = api.describe_devices()
    api.configure_cpu_threads(job_threads())
    return devices


def collect_garbage() -> None:
    """One full garbage collection, on the UI thread, once a panel has torch imported (see ``load_devices``).

    The import leaves ~300,000 new long-lived objects, and Python's next full pass over the whole heap
    (~600,000 objects, 0.2-0.5 s holding the GIL) otherwise comes at a random later moment: measured, a
    575 ms freeze while the user browsed slices during a fine-tune. Collected now, the next full pass waits
    until the heap has grown by another quarter. Never in a worker thread: the garbage may hold Qt objects,
    and destroying those off the UI thread deadlocked against it (the worker waited for the GIL inside
    ``QObject::~QObject`` while the UI thread, holding the GIL, waited for Qt's connection lock).
    """
    gc.collect()


def start_device_probe(panel: Any) -> None:
    """Fill ``panel.form``'s device box from a worker (:func:`load_devices`), then :func:`collect_garbage`.

    ``panel.devices_known`` turns True once done; a failure goes to ``panel.status``. Shared by the panels that
    choose a device (data + pre-training, annotate + fine-tune).
    """
    panel.devices_known = False

    def done(devices: list[api.DeviceInfo]) -> None:
        try:
            panel.form.set_devices(devices)
        except RuntimeError:  # the panel was closed (its widgets deleted) before the probe finished
            return
        finally:
            collect_garbage()
        panel.devices_known = True

    start_worker(load_devices, _connect={"returned": done, "errored": lambda e: panel.status.error(str(e))})


def device_choices(devices: list[api.DeviceInfo]) -> list[tuple[str, str]]:
    """(label, value) pairs for the device box; the label names the GPU and its memory."""
    choices = [("auto (best available)", "auto")]
    if not any(dev.kind == "cpu" for dev in devices):
        choices.append(("cpu", "cpu"))  # always there, even before the engine has looked for GPUs
    for dev in devices:
        memory = f", {dev.memory_gb:.0f} GB" if dev.memory_gb else ""
        choices.append((f"{dev.kind}: {dev.name}{memory}", dev.kind))
    return choices


class PretrainForm(Container):
    """Fields of a :class:`api.PretrainConfig` that a user should see; ``config()`` builds the rest."""

    def __init__(self) -> None:
        self.method = ComboBox(label="Method", choices=list(api.METHODS), value="gcl",
                               tooltip="gcl: gradient-guided contrast over all chosen meta labels")
        self.preset = ComboBox(label="Preset", choices=[*PRESETS, CUSTOM], value="quick (CPU)")
        self.device = ComboBox(label="Device", choices=device_choices([]), value="auto",
                               tooltip="detected devices appear once the engine has looked (a second or two)")
        self.steps = SpinBox(label="Steps", min=1, max=1_000_000, value=150)
        self.size = SpinBox(label="Image size", min=16, max=1024, step=16, value=64)
        self.base_channels = SpinBox(label="Base channels", min=4, max=256, value=8)
        self.levels = SpinBox(label="U-Net levels", min=2, max=7, value=4)
        self.checkpoint_every = SpinBox(label="Checkpoint every", min=1, max=1_000_000, value=50)
        self.field_of_view = SpinBox(
            label="Field of view (mm)", min=0, max=2000, step=10, value=0,
            tooltip="0: each slice's whole field of view fills the image. A number: every scan at that many mm "
                    "per image width, so organs keep one size in pixels; for a model meant for scans of "
                    "different fields of view (parts beyond it are cropped)")
        super().__init__(widgets=[self.method, self.preset, self.device, self.steps, self.size,
                                  self.base_channels, self.levels, self.checkpoint_every, self.field_of_view])
        self._applying = False
        self.preset.changed.connect(self._apply_preset)
        for name in SIZE_FIELDS:
            getattr(self, name).changed.connect(self._mark_custom)
        self._apply_preset(self.preset.value)

    def set_devices(self, devices: list[api.DeviceInfo]) -> None:
        current = self.device.value
        self.device.choices = device_choices(devices)
        values = [value for _, value in device_choices(devices)]
        self.device.value = current if current in values else "auto"

    def _apply_preset(self, name: str) -> None:
        values = PRESETS.get(name)
        if values is None:
            return
        self._applying = True
        try:
            for key, value in values.items():
                getattr(self, key).value = value
        finally:
            self._applying = False

    def _mark_custom(self, *_: Any) -> None:
        if not self._applying and self.preset.value != CUSTOM:
            self.preset.value = CUSTOM

    def preprocess(self) -> api.PreprocessConfig:
        """How the job will resample slices: the data panel's scan caches them so, for the job to reuse."""
        return dataclasses.replace(api.PreprocessConfig(), size=int(self.size.value),
                                   field_of_view_mm=float(self.field_of_view.value) or None)

    def config(self, folder: str, out: str, meta_labels: tuple[str, ...],
               cache: str | None = None) -> api.PretrainConfig:
        """The job's config; validated here so that a bad value is reported before a process starts."""
        base = api.PretrainConfig()
        cfg = api.PretrainConfig(
            folder=folder, out=out, method=self.method.value, meta_labels=meta_labels, cache=cache,
            steps=int(self.steps.value), device=str(self.device.value), threads=job_threads(),
            checkpoint_every=min(int(self.checkpoint_every.value), int(self.steps.value)),
            preprocess=self.preprocess(),
            model=dataclasses.replace(base.model, base_channels=int(self.base_channels.value),
                                      levels=int(self.levels.value)),
        )
        cfg.validate()
        return cfg
