"""Annotate & fine-tune: paint a few slices, fine-tune in a child process, watch the preview, correct.

The loop a user repeats: paint -> Fine-tune (Shift-F) -> the preview layer fills in on the slice in
view while training runs, then on the whole volume -> accept a good predicted slice (Shift-A) or
correct it -> jump to the suggested next slice (Shift-N; the model's ranking, or index order) -> Fine-tune
again, continuing from the current weights. Before any network exists, two painted slices already show a first
guess between them (contour interpolation). Annotations autosave to the project and come back when the image
is reopened.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
from gcl_app.layers import META_KEY, geometry_of, layer_affine, volume_of_layer
from gcl_app.project import Project
from gcl_app.services import JobRunner
from gcl_app.widgets import annotation_layers as tied
from gcl_app.widgets import panel_actions
from gcl_app.widgets.autosave import Autosaver
from gcl_app.widgets.class_list import ClassList
from gcl_app.widgets.common import EtaProgress, LayerChooser, StatusLine, Throttle, start_worker
from gcl_app.widgets.docking import scroll_body
from gcl_app.widgets.finetune_form import FinetuneForm, annotation_problem
from gcl_app.widgets.first_guess import FirstGuess, Guess
from gcl_app.widgets.fit_warning import FitWarning
from gcl_app.widgets.loss_plot import LossPlot
from gcl_app.widgets.pretrain_form import start_device_probe
from gcl_app.widgets.preview import PreviewController
from gcl_app.widgets.slice_strip import SliceStrip, connect_dims, slice_states
from gcl_app.widgets.slices import annotated_slices, current_slice, next_unannotated, show_slice
from gcl_app.widgets.suggestions import Ranking, SuggestionView
from qtpy import API_NAME
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gcl_engine import api

_CONTEXT_TIMERS = API_NAME.startswith("PySide")  # singleShot(ms, context, fn): dropped with the panel

SHORTCUTS = panel_actions.DEFAULT_KEYS  # the defaults; napari's Preferences > Shortcuts rebinds them
HOW_TO_PAINT = (
    "How to paint: choose a class in the list (its number is the label), select the annotations layer, "
    "press P (or the brush in the layer controls) and paint; press Z (pan/zoom) to move around without painting. "
    "Every slice you paint counts as complete: what you leave unpainted on it is learned as background, so "
    "outline each structure fully on the slices you choose. The preview is drawn as an outline "
    f"({SHORTCUTS['toggle_preview']} shows or hides it).")
SHORT_HINT = ("How to paint: select the annotations layer, press P for the brush (Z to move around), the class "
              "number is the label. A painted slice counts as complete: what you leave unpainted on it is "
              f"learned as background. The preview is an outline ({SHORTCUTS['toggle_preview']} hides it).")


class FinetunePanel(QWidget):
    """The annotate/fine-tune loop on one image layer of the viewer."""

    preview_updated = Signal(str)  # "slices" during training, "volume" once the whole volume is predicted

    def __init__(self, viewer: Any, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.project = viewer, project
        self.runner = JobRunner(self)
        self.closing = False  # the window is closing: a job's end registers its model, no preview follows
        self._progress: api.Progress | None = None
        self.previews = PreviewController(viewer, self)
        self.autosaver = Autosaver(float(project.get("autosave_s", 30)), self)
        self.image: Any | None = None
        self.accepted: set[int] = set()  # slices of self.image taken from the preview (Accept)
        self._watched_previews: set[int] = set()
        self._classes_of: dict[str, list[str]] = {}  # volume id -> its class list (a list belongs to a scan)
        self._annotated_throttle: Throttle | None = None
        self.previews.painted = self._painted_set
        self.first_guess = FirstGuess(self)
        self.ranking: Ranking | None = None
        self._ranking_image: Any | None = None
        self._guess_key: tuple | None = None
        self._build()
        self._connect()
        self._bind_keys()
        self._refresh_pretrained()
        self.project.add_listener(self._on_project)
        start_device_probe(self)  # also imports torch into this process and settles it for a window

    def _build(self) -> None:
        self.image_chooser = LayerChooser(self.viewer, "image", self)
        self.annotate_button = QPushButton("Annotate this image", self)
        self.annotate_button.setToolTip("Create (or restore from the project) the annotation layer of the image")
        self.classes = ClassList(parent=self)
        self.form = FinetuneForm()
        self.finetune_button = QPushButton("Fine-tune", self)  # the key bound now is added (_label_buttons)
        self.cancel_button = QPushButton("Cancel", self)
        self.accept_button = QPushButton("Accept preview slice", self)
        self.next_button = QPushButton("Next slice to paint", self)
        self.suggested_next = QCheckBox("Next goes to the suggested slice", self)
        self.suggested_next.setChecked(True)
        self.suggested_next.setToolTip("After each fine-tune the model ranks the unpainted slices (the middle of "
                                       "the largest gap between painted slices and the ends of the structures). "
                                       "Untick to go to the next unpainted slice in index order instead.")
        self.suggestions = SuggestionView(self)
        self.curve = LossPlot(self, conflict_axis=False, min_height=150)  # this round's loss
        self.curve.setToolTip("The loss of the fine-tune running now (or the last one), step by step: it should "
                              "fall and flatten. It restarts with each Fine-tune.")
        self.heldout_label = QLabel("", self)  # each round checks the model before it on the slices painted since
        self.heldout_label.setWordWrap(True)
        self.heldout: list[tuple[float, int]] = []  # (Dice, slices) per round, in order
        self.view_3d = QCheckBox("3D view", self)
        self.view_3d.setToolTip("Render the scan, the annotations and the whole-volume preview in 3D (napari's "
                                "3D view; the preview is drawn filled there, as napari draws no outlines in 3D). "
                                "Untick to paint again: painting happens on 2D slices.")
        self.show_uncertainty = QCheckBox("Show uncertainty", self)
        self.show_uncertainty.setToolTip("An overlay of the model's uncertainty (entropy over the classes): bright "
                                         "where it hesitates, dark where it is sure. Updated with each whole-volume "
                                         "preview; the slices bright along a structure's edge are worth a look.")
        self.progress = EtaProgress(self)
        self.annotated_label = QLabel("", self)
        self.annotated_label.setWordWrap(True)
        self.strip = SliceStrip(self)
        self.hint = QLabel(SHORT_HINT, self)  # the actions first, in view on a laptop; the settings below
        self.hint.setToolTip(HOW_TO_PAINT)
        self.hint.setWordWrap(True)
        self.classes.table.setMaximumHeight(130)
        self.status = StatusLine(self)
        self.fit_warning = FitWarning(self.project, self)  # does this scan fit the pre-training pool?
        row = QHBoxLayout()
        row.addWidget(self.image_chooser, 1)
        row.addWidget(self.annotate_button)
        actions = QHBoxLayout()
        actions.addWidget(self.finetune_button)
        actions.addWidget(self.cancel_button)
        views = QHBoxLayout()  # what the viewer shows of the model: side by side, to keep the dock short
        views.addWidget(self.show_uncertainty)
        views.addWidget(self.view_3d)
        views.addStretch(1)
        layout = QVBoxLayout(scroll_body(self))
        for item in (QLabel("Image", self), row, self.fit_warning, QLabel("Classes", self), self.classes,
                     actions, self.progress, self.accept_button, self.next_button, self.annotated_label,
                     self.strip, self.status, self.suggested_next, views, self.suggestions, self.hint,
                     self.form.native, QLabel("Fine-tuning curve", self), self.curve, self.heldout_label):
            if isinstance(item, QHBoxLayout):
                layout.addLayout(item)
            else:
                layout.addWidget(item)
        layout.addStretch(1)
        self.cancel_button.setEnabled(False)

    def _connect(self) -> None:
        self.annotate_button.clicked.connect(self.attach)
        self.finetune_button.clicked.connect(self.finetune)
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.accept_button.clicked.connect(self.accept_preview)
        self.next_button.clicked.connect(self.go_next_unannotated)
        self.show_uncertainty.toggled.connect(self._toggle_uncertainty)
        self.view_3d.toggled.connect(lambda on: setattr(self.viewer.dims, "ndisplay", 3 if on else 2))
        self.viewer.dims.events.ndisplay.connect(self._on_ndisplay)  # napari's own 2D/3D button too
        self.classes.changed.connect(self._apply_classes)
        self.image_chooser.currentIndexChanged.connect(self._show_annotated)
        self.strip.clicked.connect(self._go_to_slice)
        self.suggestions.chosen.connect(self._go_to_slice)
        self.first_guess.ready.connect(self._show_guess)
        self.first_guess.failed.connect(lambda m: self.status.error(m))
        connect_dims(self.viewer, self._update_strip_mark)
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        self.form.opacity.changed.connect(self._set_opacity)
        self.autosaver.saved.connect(lambda p: self.status.info(f"annotations saved: {Path(p).name}"))
        self.autosaver.failed.connect(lambda m: self.status.error(f"autosave failed: {m}"))
        self.autosaver.edited.connect(self._after_history_move)
        r = self.runner
        r.progress.connect(self.progress.set_progress)
        r.progress.connect(self._on_progress)
        r.preview.connect(self.previews.on_preview)
        r.metric.connect(self._on_metric)
        self.previews.updated.connect(self.preview_updated.emit)
        self.previews.updated.connect(self._show_annotated)
        self.previews.failed.connect(self._on_failed)
        r.log.connect(lambda e: self.status.info(e.message))
        r.finished.connect(self._on_finished)
        r.failed.connect(self._on_failed)

    def _bind_keys(self) -> None:
        """The shortcuts are napari actions (rebindable in Preferences > Shortcuts); the buttons show the key
        bound now and follow a rebinding."""
        panel_actions.register(self.viewer, {"next": self.go_next_unannotated, "finetune": self.finetune,
                                             "accept": self.accept_preview, "toggle_preview": self.toggle_preview})
        self._label_buttons()
        panel_actions.on_change(self._label_buttons, until=self.destroyed)

    def _label_buttons(self) -> None:
        keys = {short: panel_actions.current_key(short) for short in SHORTCUTS}

        def tagged(text: str, short: str) -> str:
            return f"{text} [{keys[short]}]" if keys[short] else text

        self.finetune_button.setText(tagged("Fine-tune", "finetune"))
        self.accept_button.setText(tagged("Accept preview slice", "accept"))
        self.next_button.setText(tagged("Next slice to paint", "next"))
        self.finetune_button.setToolTip(tagged("Train on the painted slices in the background", "finetune"))
        self.accept_button.setToolTip(tagged("Copy the predicted slice in view into the annotations "
                                             "(Ctrl-Z undoes it)", "accept"))
        self.next_button.setToolTip(tagged("Go to the suggested slice, or the next slice without annotations",
                                           "next"))

    # --- layers ---------------------------------------------------------------------------

    def layer(self, role: str) -> Any | None:
        return tied.find_layer(self.viewer, self.image, role) if self.image is not None else None

    def attach(self) -> Any | None:
        """Tie the chosen image: its annotation layer (restored from the autosave when there is one)."""
        image = self.image_chooser.layer()
        if image is None or image.ndim != 3:
            self.status.error("Open a 3D scan first (File > Open, or File > Open Sample > GCL Studio).")
            return None
        switched = self.image is not None and not tied.same_layer(image, self.image)
        if switched or self.image is None:
            self.accepted = set()
        if switched:
            self._classes_of[tied.volume_id_of(self.image)] = self.classes.names()
        self.image = image
        existing = tied.find_layer(self.viewer, image, tied.ANNOTATIONS)
        restored = None if existing is not None else \
            self.project.load_annotations(tied.volume_id_of(image), image.data.shape)
        if restored is not None and restored.names:
            self.classes.set_names(restored.names)
        elif restored is not None and restored.problem:  # keep every painted class, by number
            present = int(restored.array.max()) if restored.array.size else 0
            self.classes.set_names(["background"] + [f"class {i}" for i in range(1, max(present, 1) + 1)])
        elif switched:  # each scan keeps its own list; one never annotated starts from the model's classes
            self.classes.set_names(self._classes_of.get(tied.volume_id_of(image))
                                   or self.project.get("model_classes") or ["background", "foreground"])
        # the preview layer is made now, below the annotations: adding a layer costs napari ~0.1 s of UI
        # thread (its controls), which must not happen while a job streams previews
        preview = tied.ensure_layer(self.viewer, image, tied.PREVIEW, self.classes.names(),
                                    opacity=self.form.opacity.value)
        real = getattr(preview, "__wrapped__", preview)  # napari hands plugins a new proxy per lookup
        if id(real) not in self._watched_previews:
            self._watched_previews.add(id(real))
            preview.events.paint.connect(lambda _e, p=preview: self._painted_on_preview(p))
        layer = tied.ensure_layer(self.viewer, image, tied.ANNOTATIONS, self.classes.names(),
                                  data=None if restored is None else restored.array.astype(np.uint8))
        self._apply_classes()
        self.autosaver.watch(layer, self.project.save_annotations_from, self._save_context)
        if self._annotated_throttle is None:
            self._annotated_throttle = Throttle(self._show_annotated, 500, self)
        for event in (layer.events.paint, layer.events.data):
            event.connect(self._annotated_throttle.request)
        self.viewer.layers.selection.active = layer
        # pan/zoom, not paint: the first click into the canvas (to focus it) must not paint a label
        layer.mode, layer.selected_label = "pan_zoom", max(layer.selected_label, 1)
        self._show_annotated()
        self.fit_warning.check(image)
        if restored is not None and restored.problem:
            self.status.error(f"Annotations restored from the project; {restored.problem}. Name them again.")
        else:
            self.status.info("Annotations restored from the project." if restored is not None else
                             "Paint a few slices (press P for the brush, one class per label), then Fine-tune.")
        return layer

    def _save_context(self) -> dict[str, Any]:
        """What a save needs besides the array, read on the UI thread (widgets are not thread-safe)."""
        image = self.image
        return {"geometry": geometry_of(image.metadata, layer_affine(image)),
                "volume_id": tied.volume_id_of(image), "names": self.classes.names()}

    def _apply_classes(self) -> None:
        for role in (tied.ANNOTATIONS, tied.PREVIEW):
            layer = self.layer(role)
            if layer is not None:
                tied.apply_classes(layer, self.classes.names(), self.classes.color_dict())
        self.autosaver.mark_dirty()

    def _set_opacity(self, value: float) -> None:
        preview = self.layer(tied.PREVIEW)
        if preview is not None:
            preview.opacity = float(value)

    def _annotations(self) -> Any | None:
        """The annotation layer of the image chosen in the panel (attaching it first when it changed)."""
        chosen = self.image_chooser.layer()
        if chosen is not None and not tied.same_layer(chosen, self.image):
            return self.attach()
        return self.layer(tied.ANNOTATIONS) or self.attach()

    def _shown_annotations(self) -> Any | None:
        """The annotation layer of the image the chooser shows (which may not be attached yet)."""
        chosen = self.image_chooser.layer()
        if chosen is None:
            return None
        return tied.find_layer(self.viewer, chosen, tied.ANNOTATIONS)

    def _painted_set(self) -> set[int]:
        layer = self.layer(tied.ANNOTATIONS)
        return set(annotated_slices(layer.data)) if layer is not None else set()

    def _show_annotated(self, *_: Any) -> None:
        """The "Annotated slices" line and the strip, for the image chosen in the panel (kept true on a switch)."""
        chosen = self.image_chooser.layer()
        layer = self._shown_annotations()
        done = annotated_slices(layer.data) if layer is not None else []
        name = f" of {chosen.name}" if chosen is not None else ""
        self.annotated_label.setText(f"Annotated slices{name}: {', '.join(map(str, done)) or 'none yet'}")
        if chosen is not None and tied.same_layer(chosen, self.image):
            self.previews.hide_painted()
            same = tied.same_layer(self.previews.image, chosen)
            predicted = self.previews.predicted | self.previews.interpolated if same else set()
            self._request_guess(layer, done)
            self.strip.set_states(slice_states(chosen.data.shape[0], set(done), self.accepted, predicted),
                                  self._current(chosen))
        else:
            self.strip.set_states(slice_states(chosen.data.shape[0], set(done), set(), set())
                                  if chosen is not None and chosen.ndim == 3 else [], None)

    def _after_history_move(self) -> None:
        """Redraw the strip and the preview's hidden slices: Ctrl-Z / Ctrl-Shift-Z emit no paint event (a stroke,
        which does, only asks the same throttle again)."""
        if self._annotated_throttle is not None:
            self._annotated_throttle.request()

    def _current(self, layer: Any) -> int | None:
        return current_slice(self.viewer, layer) if layer is not None and layer.ndim == 3 else None

    def _update_strip_mark(self, *_: Any) -> None:
        chosen = self.image_chooser.layer()
        if self.strip.states:
            self.strip.set_states(self.strip.states, self._current(chosen))

    def _go_to_slice(self, k: int) -> None:
        chosen = self.image_chooser.layer()
        if chosen is not None and chosen.ndim == 3:
            show_slice(self.viewer, chosen, k)

    def _on_layer_inserted(self, event: Any) -> None:
        """A scan opened beside another lands elsewhere in patient space: fit the view to it, at its middle."""
        layer = event.value
        if type(layer).__name__ != "Image" or layer.ndim != 3 or META_KEY not in layer.metadata:
            return
        if not any(type(other).__name__ == "Image" and not tied.same_layer(other, layer)
                   for other in self.viewer.layers):
            return  # the first layer: napari fits the view itself
        # after napari's own handlers of the insertion (they reset the slider's range and point)
        QTimer.singleShot(0, self, lambda: self._fit_to(layer)) if _CONTEXT_TIMERS else \
            QTimer.singleShot(0, lambda: self._fit_to(layer))

    def _fit_to(self, layer: Any) -> None:
        if layer not in self.viewer.layers:
            return
        self.viewer.reset_view(layers=[layer])
        show_slice(self.viewer, layer, layer.data.shape[0] // 2)
        self.image_chooser.refresh()
        self.image_chooser.setCurrentText(layer.name)

    def _painted_on_preview(self, preview: Any) -> None:
        """Paint on the preview is never trained on: say so, put the prediction back, select the annotations."""
        self.status.error(f"'{preview.name}' shows the model's prediction; painting there is ignored by "
                          f"fine-tuning. Paint on '{self.image.name} {tied.ANNOTATIONS}' (selected now).")
        # napari announces a stroke before it has written all of it: put the prediction back once it has
        QTimer.singleShot(0, self, lambda: self._restore_preview(preview)) if _CONTEXT_TIMERS else \
            QTimer.singleShot(0, lambda: self._restore_preview(preview))

    def _restore_preview(self, preview: Any) -> None:
        values = self.previews.values
        if values is not None and values.shape == preview.data.shape and tied.same_layer(self.previews.layer(),
                                                                                          preview):
            preview.data[...] = 0
            shown = sorted(self.previews.shown_slices())
            preview.data[shown] = values[shown]
        else:
            preview.data[...] = 0
        preview.refresh()
        preview.editable = False
        annotations = self.layer(tied.ANNOTATIONS)
        if annotations is not None:
            self.viewer.layers.selection.active = annotations

    def _on_metric(self, metric: api.Metric) -> None:
        """Loss into the curve; a round's held-out check (the previous model on the slices painted since, scored
        before it learns them) into the line under it: the honest measure of how good the model was."""
        values = dict(metric.values)
        if "heldout_dice" in values:
            self.heldout.append((float(values["heldout_dice"]), int(values.get("heldout_slices", 0))))
            last, n = self.heldout[-1]
            earlier = ", ".join(f"{d:.2f}" for d, _ in self.heldout[:-1])
            self.heldout_label.setText(
                f"Check before this round: the previous model scored Dice {last:.2f} on the {n} slice(s) painted "
                "or accepted since it was trained (an accepted slice it predicted itself scores high)"
                + (f"; earlier rounds: {earlier}." if earlier else "."))
        if "loss" in values:
            self.curve.add(metric.step, {"loss": values["loss"]})

    def _on_ndisplay(self, *_: Any) -> None:
        """Keep the checkbox and the preview's drawing in step with the viewer's 2D/3D mode."""
        three_d = self.viewer.dims.ndisplay == 3
        if self.view_3d.isChecked() != three_d:
            self.view_3d.blockSignals(True)
            self.view_3d.setChecked(three_d)
            self.view_3d.blockSignals(False)
        preview = self.layer(tied.PREVIEW)
        if preview is not None:
            preview.contour = 0 if three_d else tied.PREVIEW_CONTOUR

    def _toggle_uncertainty(self, on: bool) -> None:
        """On: show the current model's uncertainty (predicting the volume once if it has none yet); off: hide it
        and stop computing it (a prediction without it is faster)."""
        self.previews.with_uncertainty = bool(on)
        layer = self.layer(tied.UNCERTAINTY)
        model = self.project.current_model()
        if not on:
            if layer is not None:
                layer.visible = False
            return
        if layer is not None and self.previews.uncertainty_shown_for == (str(model) if model else None):
            layer.visible = True
            return
        if model is None or self.image is None:
            self.status.info("The uncertainty is shown with the first whole-volume preview (fine-tune first).")
            return
        if self.runner.running:
            self.status.info("The uncertainty is shown with the whole-volume preview at the end of this fine-tune.")
            return
        self.progress.busy("predicting the whole volume with its uncertainty …")
        self.previews.begin(self.image)
        self.previews.predict(str(model), str(self.form.device.value), self.classes.names(), self._on_prediction)

    def toggle_preview(self) -> None:
        preview = self.layer(tied.PREVIEW)
        if preview is not None:
            preview.visible = not preview.visible
            self.status.info(f"Preview {'shown' if preview.visible else 'hidden'} "
                             f"({panel_actions.current_key('toggle_preview') or 'no key'} toggles it).")

    # --- actions ----------------------------------------------------------------------------

    def _request_guess(self, layer: Any, painted: list[int]) -> None:
        """Two painted slices and no network preview yet: the interpolation between them, as a first guess."""
        if layer is None or len(painted) < 2 or self.runner.running or self.closing:
            return
        if self.previews.predicted and tied.same_layer(self.previews.image, self.image):
            return
        data = np.asarray(layer.data)
        key = (tied.volume_id_of(self.image), tuple(painted), zlib.crc32(np.ascontiguousarray(data[painted])))
        if key == self._guess_key:  # nothing painted since the last guess (this runs on every refresh)
            return
        self._guess_key = key
        self.first_guess.request(data, geometry_of(self.image.metadata,
                                                                     layer_affine(self.image)).spacing)

    def _show_guess(self, guess: Guess) -> None:
        if self.image is None or self.closing or not guess.slices:
            return
        try:
            shown = self.previews.show_guess(self.image, guess.slices, guess.masks)
        except RuntimeError:  # the panel or its layer was closed while the guess ran
            return
        if shown:
            self._show_annotated()
            self.status.info(f"First guess on slices {guess.slices[0]}-{guess.slices[-1]}: contour interpolation "
                             f"between the painted slices, until the network's first preview replaces it.")

    def _rank(self, model: str) -> None:
        """Rank the unpainted slices with the new model (a thread worker: one more pass over the scan)."""
        image = self.image
        if image is None:
            return
        painted = sorted(self._painted_set())
        n = int(image.data.shape[0])

        def shown(scores: list) -> None:
            try:
                if self.closing or not tied.same_layer(image, self.image):
                    return  # a late result for a scan no longer annotated
                self.ranking, self._ranking_image = Ranking.from_scores(scores, n, painted), image
                self.suggestions.show_ranking(self.ranking)
            except RuntimeError:  # the panel was closed (its widgets deleted) while the ranking ran
                pass

        def failed(exc: Exception) -> None:
            try:
                self.status.error(f"Could not rank the slices: {exc}")
            except RuntimeError:
                pass

        start_worker(api.rank_slices, model, volume_of_layer(image), painted,
                     _connect={"returned": shown, "errored": failed})

    def go_next_unannotated(self) -> None:
        layer = self._annotations()
        if layer is None:
            return
        painted = self._painted_set()
        if (self.suggested_next.isChecked() and self.ranking is not None
                and tied.same_layer(self._ranking_image, self.image)):
            k = self.ranking.best(exclude=painted)
            if k is not None:
                show_slice(self.viewer, layer, k)
                self.status.info(f"Slice {k}: the suggested next slice to paint.")
                return
        k = next_unannotated(layer.data, current_slice(self.viewer, layer))
        if k is None:
            self.status.info("Every slice holds annotations.")
            return
        show_slice(self.viewer, layer, k)

    def accept_preview(self) -> None:
        annotations = self._annotations()
        if annotations is None:
            return
        k = current_slice(self.viewer, annotations)
        done, message = self.previews.accept(annotations, self.image)
        if not done:
            self.status.error(message)
            return
        self.accepted.add(k)
        self.autosaver.mark_dirty()
        self._show_annotated()
        self.status.info(message)

    def finetune(self) -> None:
        if self.runner.running:
            self.status.info("A fine-tune is already running.")
            return
        annotations = self._annotations()
        if annotations is None:
            return
        problem = annotation_problem(self.image.metadata, annotations.data, len(self.classes.names()))
        if problem:
            self.status.error(problem)
            return
        self.finetune_button.setEnabled(False)
        self.progress.busy("saving annotations …")
        self.autosaver.save_now(then=self._start_job, on_error=self._on_save_error)

    def _on_save_error(self, message: str) -> None:
        self.finetune_button.setEnabled(True)
        self.progress.done("fine-tuning not started", complete=False)
        self.status.error(f"Could not save the annotations: {message}")

    def _start_job(self, labels_path: Path) -> None:
        self._progress = None
        cfg = self._config(labels_path)
        try:
            self.runner.start("finetune", cfg, self.project.job_dir("finetune"))
        except (OSError, RuntimeError, api.GCLError) as exc:
            self._on_failed(f"Could not start fine-tuning: {exc}")
            return
        self._job_config = cfg
        self.curve.clear()
        self.previews.begin(self.image)
        self.cancel_button.setEnabled(True)
        painted = annotated_slices(self.layer(tied.ANNOTATIONS).data)
        # the child needs seconds to import torch and load the network before its first step: say so
        self.progress.busy("annotations saved; starting the training process (loading the network) …")
        self.status.info(f"Fine-tuning on slices {', '.join(map(str, painted))}: the first preview comes after "
                         f"{int(self.form.preview_every.value)} steps.")

    def _config(self, labels_path: Path) -> api.FinetuneConfig:
        names, current = self.classes.names(), self.project.current_model()
        continuing = bool(self.form.continue_model.value and current is not None
                          and self.project.get("model_classes") == names)
        return self.form.config(
            image=str(self.image.metadata[META_KEY]["source"]), labels=str(labels_path),
            out=str(self.project.new_model_path(tied.volume_id_of(self.image))), class_names=tuple(names),
            init_model=str(current) if continuing else None,
            saved_shape=self.project.get("model_config") if continuing else None,
            preview_slice=current_slice(self.viewer, self.layer(tied.ANNOTATIONS)))

    # --- job events -------------------------------------------------------------------------

    def _on_progress(self, event: api.Progress) -> None:
        self._progress = event

    def job_summary(self) -> str:
        """The close prompt's words for the running fine-tune."""
        event = self._progress
        where = f"at step {event.done} of {event.total}" if event is not None and event.total else "starting"
        return (f"Fine-tuning is {where}. Stopping saves the model trained so far and keeps it as the project's "
                f"model (no whole-volume preview is made); your annotations are saved. If it has not stopped "
                f"within {self.runner.grace_s:.0f} s it is killed and this round's training is lost.")

    def _on_finished(self, event: api.Finished) -> None:
        self.cancel_button.setEnabled(False)
        self.finetune_button.setEnabled(True)
        model = event.result.get("model")
        self.progress.done(f"fine-tuning {event.status}", complete=event.status == "completed")
        if not model:
            self.status.info(f"Fine-tuning {event.status}; no model was saved.")
            return
        cfg = self._job_config
        self.project.update(model=str(model), model_classes=list(cfg.class_names or ()),
                            model_config={"preprocess": api.to_dict(cfg.preprocess), "model": api.to_dict(cfg.model)})
        if self.closing:
            return
        self.progress.busy("predicting the whole volume …")
        self.previews.predict(str(model), str(self.form.device.value), self.classes.names(), self._on_prediction)

    def _on_failed(self, message: str) -> None:
        self.cancel_button.setEnabled(False)
        self.finetune_button.setEnabled(True)
        self.progress.done("fine-tuning failed", complete=False)
        self.status.error(message)

    def _on_prediction(self) -> None:
        self._apply_classes()
        self._show_annotated()
        model = self.project.current_model()
        if model is not None:
            self._rank(str(model))
        self.progress.done("preview: whole volume done")
        self.status.info("Whole-volume preview ready. Accept good slices, correct, fine-tune again.")

    def _on_project(self, key: str) -> None:
        if key in ("project", "pretrained"):
            self._refresh_pretrained()
        if key == "autosave_s":
            self.autosaver.set_interval(float(self.project.get("autosave_s", 30)))

    def _refresh_pretrained(self) -> None:
        checkpoint = self.project.pretrained_checkpoint()
        if checkpoint is not None:
            self.form.pretrained.value = str(checkpoint)

    def shutdown(self) -> None:
        """The window is closing: stop the job, save what was painted, release the shortcuts."""
        self.closing = True  # late worker results (first guess, ranking) are dropped from now on
        self.runner.kill()
        if self.autosaver.dirty:
            layer = self.layer(tied.ANNOTATIONS)
            if layer is not None:
                self.project.save_annotations_from(np.asarray(layer.data), self._save_context())
        panel_actions.unregister(self.viewer)
        self.viewer.dims.events.point.disconnect(self._update_strip_mark)
        self.viewer.dims.events.ndisplay.disconnect(self._on_ndisplay)
        self.viewer.layers.events.inserted.disconnect(self._on_layer_inserted)
        self.project.remove_listener(self._on_project)
