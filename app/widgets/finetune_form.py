"""The fine-tuning form (magicgui) and how a fine-tune's network shape is decided.

The fine-tuned network must have the shape of the encoder it starts from: the pre-training run's config
(``api.run_config_of``) says which; a continued fine-tune reuses the shape stored with the current model.
Without either, and for the number of steps, the defaults are the engine's interactive recipe
(``api.RECIPE``, chosen on the annotation benchmark), not constants of the GUI's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gcl_app.layers import META_KEY
from gcl_app.widgets.pretrain_form import device_choices, job_threads
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSlider, SpinBox

from gcl_engine import api

RECIPE = api.RECIPE


def network_shape(pretrained: Path | None, saved: dict[str, Any] | None) -> tuple[api.PreprocessConfig,
                                                                                   api.ModelConfig]:
    """(preprocess, model) for a fine-tune: the saved model's, else the pre-training run's, else the recipe's."""
    if saved:
        return (api.from_dict(api.PreprocessConfig, saved["preprocess"]),
                api.from_dict(api.ModelConfig, saved["model"]))
    run = api.run_config_of(pretrained) if pretrained is not None else None
    if run is not None:
        return run.preprocess, run.model
    return RECIPE.preprocess, RECIPE.model


def annotation_problem(image_metadata: dict[str, Any], labels: np.ndarray, n_classes: int) -> str:
    """Why these annotations cannot be fine-tuned on yet ("" when they can)."""
    if not (image_metadata.get(META_KEY) or {}).get("source"):
        return "This image was not opened by GCL Studio's reader: reopen the file with it to fine-tune."
    if not np.any(labels):
        return "Paint at least one slice first."
    top = int(labels.max())
    if top >= n_classes:
        return f"Label {top} is painted but the class list has only {n_classes - 1} class(es): add classes."
    return ""


class FinetuneForm(Container):
    """Pre-trained checkpoint, steps, preview cadence, device, continuation and preview opacity."""

    def __init__(self) -> None:
        self.pretrained = FileEdit(mode="r", label="Pre-trained", filter=f"*{api.MODEL_SUFFIX}",
                                   tooltip="A pre-training checkpoint (the newest of a run folder is filled in "
                                           "after pre-training); empty: random start")
        self.steps = SpinBox(label="Steps", min=1, max=100_000, value=RECIPE.steps_first,
                             tooltip=f"The recipe: {RECIPE.steps_first} on a first fine-tune, "
                                     f"{RECIPE.steps_continue} when continuing the current model; "
                                     "a number you type is used for both")
        self.steps_chosen = False  # the user typed a number: it replaces the recipe's
        self.steps.changed.connect(self._on_steps)
        self.preview_every = SpinBox(label="Preview every", min=1, max=10_000, value=10,
                                     tooltip="Steps between preview updates of the slice in view")
        self.device = ComboBox(label="Device", choices=device_choices([]), value="auto")
        self.continue_model = CheckBox(label="Continue from the current model", value=True,
                                       tooltip="Start from the last fine-tuned weights (same classes) rather "
                                               "than from the pre-trained encoder")
        self.opacity = FloatSlider(label="Preview opacity", min=0.0, max=1.0, step=0.05, value=0.5)
        super().__init__(widgets=[self.pretrained, self.steps, self.preview_every, self.device,
                                  self.continue_model, self.opacity])

    def _on_steps(self, value: int) -> None:
        if value not in (RECIPE.steps_first, RECIPE.steps_continue):
            self.steps_chosen = True

    def steps_for(self, continuing: bool) -> int:
        """The steps of the next fine-tune: the user's number, else the recipe's for a first or continued one."""
        return int(self.steps.value) if self.steps_chosen else RECIPE.steps(continuing)

    def pretrained_path(self) -> Path | None:
        value = str(self.pretrained.value or "")
        return Path(value) if value not in ("", ".") and Path(value).is_file() else None

    def set_devices(self, devices: list[api.DeviceInfo]) -> None:
        current = self.device.value
        self.device.choices = device_choices(devices)
        if current in [v for _, v in device_choices(devices)]:
            self.device.value = current

    def config(self, image: str, labels: str, out: str, class_names: tuple[str, ...], init_model: str | None,
               saved_shape: dict[str, Any] | None, preview_slice: int) -> api.FinetuneConfig:
        """The job's config: the form's values, the network shape of what it starts from, the slice in view."""
        pretrained = self.pretrained_path()
        preprocess, model = network_shape(pretrained, saved_shape)
        steps = self.steps_for(init_model is not None)
        if not self.steps_chosen:  # the box shows what this fine-tune runs
            with self.steps.changed.blocked():
                self.steps.value = steps
        return api.FinetuneConfig(
            image=image, labels=labels, out=out, pretrained=str(pretrained) if pretrained else None,
            init_model=init_model, class_names=class_names, steps=steps,
            preview_every=int(self.preview_every.value), preview_slices=(preview_slice,),
            device=str(self.device.value), threads=job_threads(), preprocess=preprocess, model=model)
