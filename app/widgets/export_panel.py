"""Predict & export: segment the open volume or a whole folder, write masks as NIfTI or DICOM SEG, export ONNX.

Prediction of one volume takes seconds, so it runs in a thread worker (not a process). A folder is one
call of ``api.predict_folder`` (what ``gcl predict`` runs) in a thread worker: its progress events come
back through an :class:`EventRelay`, Cancel sets its cancel token (it stops after the current volume).
Every mask the user exports is written with ``api.export_mask``: source geometry, class names (sidecars, or
the SEG's segments with the layer's colours), one audit line. The file name decides the format (``.dcm``: DICOM SEG).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gcl_app.layers import META_KEY, ROLE_KEY, geometry_of, label_names_of, layer_affine, volume_of_layer
from gcl_app.project import Project, safe_name
from gcl_app.widgets import annotation_layers as tied
from gcl_app.widgets.class_list import palette_color_dict
from gcl_app.widgets.common import EtaProgress, EventRelay, LayerChooser, StatusLine, start_worker
from gcl_app.widgets.docking import scroll_body
from gcl_app.widgets.fit_warning import FitWarning
from gcl_app.widgets.preview import predict_volume
from magicgui.widgets import ComboBox, Container, FileEdit
from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gcl_engine import api

PREDICTION = "prediction"
MASK_FORMATS = {"NIfTI (.nii.gz)": ".nii.gz", "DICOM SEG (.dcm, beside a DICOM series)": ".dcm"}


def predict_folder(model: str, folder: str, out_dir: str, device: str, on_event: api.EventSink,
                   cancel: api.CancelToken) -> api.FolderPrediction:
    """Worker body: every volume of ``folder`` (each time point, each DICOM series) to ``out_dir``."""
    return api.predict_folder(model, folder, out_dir, on_event, cancel, api.PredictConfig(device=device))


def ensure_folder(folder: Path) -> None:
    """Create an output folder in a worker (a read-only or full disk raises there, never on the UI thread)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise api.OutputError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None


def export_layer(labels: np.ndarray, reference: api.Volume | api.Geometry, path: str, names: dict[int, str],
                 sources: list[str], colours: dict[int, tuple[int, int, int]] | None = None,
                 model: str | None = None) -> Path:
    """A mask in the format its name asks for: ``.dcm`` is a DICOM SEG (``reference`` then the scan's Volume)."""
    ensure_folder(Path(path).parent)
    mask_format = "dicom-seg" if path.lower().endswith(".dcm") else "nifti"
    if mask_format == "nifti" and isinstance(reference, api.Volume):
        reference = reference.geometry
    return api.export_mask(labels, reference, path, names or None, mask_format, model=model, colours=colours,
                           sources=sources if mask_format == "nifti" else ())


def layer_colours(layer: Any, indices: list[int]) -> dict[int, tuple[int, int, int]]:
    """The colours a labels layer shows its classes in (what the class list set), as RGB 0-255."""
    return {i: tuple(int(round(float(c) * 255)) for c in np.asarray(layer.get_color(i))[:3]) for i in indices
            if i > 0 and layer.get_color(i) is not None}


def export_model(model: str, out: str) -> api.OnnxExportReport:
    ensure_folder(Path(out).parent)
    return api.export_onnx(model, out)


class ExportPanel(QWidget):
    """Three groups: predict, export masks, export ONNX; one progress bar and status line."""

    def __init__(self, viewer: Any, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.project = viewer, project
        self._folder_worker: Any | None = None
        self._folder_cancel: api.CancelToken | None = None
        self._relay = EventRelay(self)
        self._relay.event.connect(self._on_folder_event)
        self._build()
        self._connect()
        self._on_project("project")
        self.project.add_listener(self._on_project)
        self._suggest_mask_path()  # "Save as" filled for the layer already chosen, not only after a change

    def _build(self) -> None:
        self.model = FileEdit(mode="r", label="Model", filter=f"*{api.MODEL_SUFFIX} *{api.ONNX_SUFFIX}",
                              tooltip="A fine-tuned model (.pt) or its ONNX export")
        self.image_chooser = LayerChooser(self.viewer, "image", self)
        self.predict_button = QPushButton("Predict current volume", self)
        self.folder = FileEdit(mode="d", label="Folder")
        self.folder_out = FileEdit(mode="d", label="Masks to")
        self.predict_folder_button = QPushButton("Predict folder", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.labels_chooser = LayerChooser(self.viewer, "labels", self)
        self.mask_format = ComboBox(label="Format", choices=list(MASK_FORMATS),
                                    tooltip="DICOM SEG: for a scan read from a DICOM series; it references the "
                                            "series and carries the patient and study of its source (for PACS)")
        self.mask_path = FileEdit(mode="w", label="Save as", filter="*.nii.gz *.dcm")
        self.export_mask_button = QPushButton("Export mask", self)
        self.onnx_path = FileEdit(mode="w", label="ONNX file", filter=f"*{api.ONNX_SUFFIX}")
        self.export_onnx_button = QPushButton("Export ONNX", self)
        self.progress = EtaProgress(self)
        self.status = StatusLine(self)
        self.fit_warning = FitWarning(self.project, self)  # does the predicted scan fit the pre-training pool?
        layout = QVBoxLayout(scroll_body(self))
        layout.addWidget(Container(widgets=[self.model]).native)
        layout.addWidget(self._group("Predict", [self._labelled("Image", self.image_chooser), self.predict_button,
                                                 self.fit_warning,
                                                 Container(widgets=[self.folder, self.folder_out]).native,
                                                 self._row(self.predict_folder_button, self.cancel_button)]))
        layout.addWidget(self._group("Export masks", [self._labelled("Labels layer", self.labels_chooser),
                                                      Container(widgets=[self.mask_format, self.mask_path]).native,
                                                      self.export_mask_button]))
        layout.addWidget(self._group("Export model", [Container(widgets=[self.onnx_path]).native,
                                                      self.export_onnx_button]))
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.cancel_button.setEnabled(False)

    def _group(self, title: str, widgets: list[QWidget]) -> QGroupBox:
        box = QGroupBox(title, self)
        inner = QVBoxLayout(box)
        for widget in widgets:
            inner.addWidget(widget)
        return box

    def _labelled(self, text: str, widget: QWidget) -> QWidget:
        """A chooser with its name in front (a bare combo box of layer names did not say what it chose)."""
        row = self._row(QLabel(text, self), widget)
        row.layout().setStretch(1, 1)
        widget.setToolTip({"Image": "The scan to predict", "Labels layer": "The mask to export"}.get(text, ""))
        return row

    def _row(self, *widgets: QWidget) -> QWidget:
        row = QWidget(self)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            layout.addWidget(widget)
        return row

    def _connect(self) -> None:
        self.predict_button.clicked.connect(self.predict_current)
        self.predict_folder_button.clicked.connect(self.predict_folder)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_mask_button.clicked.connect(self.export_mask)
        self.export_onnx_button.clicked.connect(self.export_onnx)
        self.labels_chooser.currentIndexChanged.connect(self._suggest_mask_path)
        self.mask_format.changed.connect(self._suggest_mask_path)

    def _on_project(self, key: str) -> None:
        if key in ("project", "model"):
            model = self.project.current_model()
            if model is not None:
                self.model.value = str(model)
                self.onnx_path.value = str(model.with_suffix(api.ONNX_SUFFIX))
        if key == "project":
            self.folder_out.value = str(self.project.root / "predictions")

    def model_path(self) -> str:
        value = str(self.model.value or "")
        return value if value not in ("", ".") and Path(value).is_file() else ""

    def _path(self, edit: FileEdit) -> str:
        value = str(edit.value or "")
        return "" if value in ("", ".") else value

    # --- predict ----------------------------------------------------------------------------

    def predict_current(self) -> None:
        model, image = self.model_path(), self.image_chooser.layer()
        if not model or image is None or image.ndim != 3:
            self.status.error("Choose a model file and open a 3D scan.")
            return
        self.predict_button.setEnabled(False)
        self.fit_warning.check(image)
        self.progress.busy(f"predicting {image.name} …")
        start_worker(predict_volume, model, volume_of_layer(image), "auto",
                     _connect={"returned": lambda p: self._on_predicted(image, p), "errored": self._on_error})

    def _on_predicted(self, image: Any, prediction: api.Prediction) -> None:
        self.predict_button.setEnabled(True)
        names = list(prediction.class_names)
        layer = tied.ensure_layer(self.viewer, image, PREDICTION, names, opacity=0.5)
        layer.data = prediction.labels
        # the class colours: the image's class list (its annotations layer shows them), else the default palette
        annotations = tied.find_layer(self.viewer, image, tied.ANNOTATIONS)
        colours = (dict(annotations.colormap.color_dict) if annotations is not None
                   and hasattr(annotations.colormap, "color_dict") else palette_color_dict(len(names)))
        tied.apply_classes(layer, names, colours)
        hidden = ""
        preview = tied.find_layer(self.viewer, image, tied.PREVIEW)
        if preview is not None and preview.visible:  # two predictions on top of each other read as one
            preview.visible = False
            hidden = f" '{preview.name}' is hidden (tick it in the layer list to compare)."
        self.labels_chooser.setCurrentText(layer.name)
        self.progress.done("prediction done")
        self.status.info(f"Prediction of {image.name} in layer '{layer.name}'.{hidden}")

    def predict_folder(self) -> None:
        model, folder, out = self.model_path(), self._path(self.folder), self._path(self.folder_out)
        if not model or not folder or not out:
            self.status.error("Choose a model, a folder of scans and where the masks go.")
            return
        self.predict_folder_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.busy("reading the folder …")
        self._folder_cancel = api.CancelToken()
        self._folder_worker = start_worker(
            predict_folder, model, folder, out, "auto", self._relay, self._folder_cancel,
            _connect={"returned": self._on_folder_done, "errored": self._on_error})

    def _on_folder_event(self, event: api.Event) -> None:
        if isinstance(event, api.Progress) and event.stage == "predict folder":
            self.progress.set_progress(event)

    def cancel(self) -> None:
        if self._folder_cancel is not None:
            self._folder_cancel.cancel()
            self.status.info("Stopping after the current volume …")

    def _on_folder_done(self, result: api.FolderPrediction) -> None:
        self._folder_worker = self._folder_cancel = None
        self.predict_folder_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.done(f"folder {result.status}", complete=result.status == "completed")
        text = f"{len(result.masks)} mask(s) written to {result.out}"
        if result.skipped:
            first = result.skipped[0]
            text += f"; {len(result.skipped)} file(s) skipped (first: {Path(first.path).name}: {first.reason})"
        self.status.info(text)

    # --- export -----------------------------------------------------------------------------

    def _suggest_mask_path(self, *_: Any) -> None:
        layer = self.labels_chooser.layer()
        if layer is not None:
            suffix = MASK_FORMATS[self.mask_format.value]
            self.mask_path.value = str(self.project.root / "exports" / f"{safe_name(layer.name)}{suffix}")

    def export_mask(self) -> None:
        layer, path = self.labels_chooser.layer(), self._path(self.mask_path)
        if layer is None or not path or layer.ndim != 3:
            self.status.error("Choose a 3D labels layer and a file name ending in .nii.gz (or .dcm for DICOM SEG).")
            return
        source = (layer.metadata.get(META_KEY) or {}).get("source")
        labels, names = np.array(layer.data, copy=True), label_names_of(layer.metadata)
        reference = volume_of_layer(layer) if META_KEY in layer.metadata else geometry_of(
            layer.metadata, layer_affine(layer))
        if isinstance(reference, api.Volume):
            reference = api.Volume(labels, reference.geometry, reference.meta)
        predicted = layer.metadata.get(ROLE_KEY) in (PREDICTION, tied.PREVIEW)  # a model made it
        self.progress.busy(f"writing {Path(path).name} …")
        start_worker(export_layer, labels, reference, path, names, [source] if source else [],
                     layer_colours(layer, sorted(set(names) | set(np.unique(labels).tolist()))),
                     self.model_path() if predicted else None,
                     _connect={"returned": self._on_exported, "errored": self._on_error})

    def _on_exported(self, path: Path) -> None:
        self.progress.done("export done")
        detail = ("a DICOM SEG referencing its series" if path.suffix.lower() == ".dcm"
                  else "class names in its .labels.json and .label.txt")
        self.status.info(f"Mask written: {path} ({detail})")

    def export_onnx(self) -> None:
        model, out = self.model_path(), self._path(self.onnx_path)
        if not model or not api.is_torch_model(model) or not out:
            self.status.error("Choose a fine-tuned .pt model and an .onnx file name.")
            return
        self.export_onnx_button.setEnabled(False)
        self.progress.busy("exporting ONNX and checking it against PyTorch …")
        start_worker(export_model, model, out, _connect={"returned": self._on_onnx, "errored": self._on_error})

    def _on_onnx(self, report: api.OnnxExportReport) -> None:
        self.export_onnx_button.setEnabled(True)
        self.progress.done("ONNX export done")
        self.status.info(f"ONNX written: {report.path} (opset {report.opset}; largest difference from PyTorch "
                         f"{report.max_abs_diff:.2e}; runs on {', '.join(report.providers)})")

    def _on_error(self, exc: Exception) -> None:
        for button in (self.predict_button, self.predict_folder_button, self.export_onnx_button):
            button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self._folder_worker = self._folder_cancel = None
        self.progress.done("failed", complete=False)
        self.status.error(str(exc))

    def shutdown(self) -> None:
        self.cancel()
        self.project.remove_listener(self._on_project)
