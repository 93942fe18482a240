"""Help ▸ About: versions, devices, the licences of the bundled sample data and of the main libraries.

A bug report is only useful with versions, and a hospital's IT asks about licences before anything
is installed. Versions come from package metadata (``importlib.metadata``), which tells torch's
version without importing torch; the devices come from the engine (``api.describe_devices``); the
sample data licences are read from the ``LICENSES.md`` that ships beside the data.
"""

from __future__ import annotations

import html
import platform
import sys
from importlib import metadata

import qtpy
from gcl_app.standalone.assets import docs_path
from gcl_app.widgets.common import start_worker
from qtpy.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from gcl_engine import api

LIBRARIES = ("gcl-studio", "torch", "napari", "PySide6-Essentials", "numpy", "SimpleITK", "monai", "onnx",
             "onnxruntime", "onnxruntime-gpu", "vispy", "magicgui", "superqt", "matplotlib", "npe2")


def library_licence(meta: metadata.PackageMetadata) -> str:
    """A short licence name: the SPDX expression, else the trove classifier, else the License field's start."""
    expression = meta.get("License-Expression")
    if expression:
        return str(expression)
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return ", ".join(classifiers)
    text = (meta.get("License") or "").strip().splitlines()
    return text[0][:60] if text else "see the package"


def library_versions() -> list[tuple[str, str, str]]:
    """(name, version, licence) of each installed library in :data:`LIBRARIES` (absent ones left out)."""
    rows = []
    for name in LIBRARIES:
        try:
            meta = metadata.metadata(name)
        except metadata.PackageNotFoundError:
            continue
        rows.append((name, meta.get("Version") or "?", library_licence(meta)))
    return rows


def sample_data_licences() -> list[tuple[str, str, str]]:
    """(files, source, licence) rows of the sample data's LICENSES.md table."""
    try:
        text = (api.sample_data_dir() / "LICENSES.md").read_text(encoding="utf-8")
    except (OSError, api.GCLError):
        return []
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and not set(cells[0]) <= set("-: ") and cells[0] != "file(s)":
            rows.append((cells[0].replace("`", ""), cells[1].replace("`", ""), cells[2]))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th align='left'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table cellspacing='4'><tr>{head}</tr>{body}</table>"


def about_html(devices: list[api.DeviceInfo] | None) -> str:
    """The whole About text (``devices`` None: still being detected)."""
    docs = docs_path()
    device_text = ("detecting…" if devices is None else
                   ", ".join(f"{d.kind} ({d.name})" for d in devices) or "none found")
    parts = [
        f"<h2>GCL Studio {html.escape(api.__version__)}</h2>",
        "<p>Few-shot medical image segmentation: GCL pre-training, interactive fine-tuning, NIfTI export.</p>",
        f"<p><b>Python</b> {platform.python_version()} · <b>Qt</b> {qtpy.QT_VERSION} ({qtpy.API_NAME}) · "
        f"<b>system</b> {html.escape(platform.platform())}{' · frozen bundle' if getattr(sys, 'frozen', False) else ''}"
        f"</p><p><b>Devices</b>: {html.escape(device_text)}</p>",
        "<h3>Libraries</h3>", _table(("package", "version", "licence"), library_versions()),
        "<h3>Bundled sample data</h3>", _table(("files", "source", "licence"), sample_data_licences()),
        "<p>The sample label maps are model output (a silver standard), not expert drawings.</p>",
        "<h3>Documentation</h3>",
        f"<p>{html.escape(str(docs)) if docs else 'README.md of the GCL Studio sources'}</p>",
    ]
    return "".join(parts)


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About GCL Studio")
        self.text = QTextBrowser(self)
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(about_html(None))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(720, 640)
        start_worker(api.describe_devices, _connect={"returned": self._show_devices})

    def _show_devices(self, devices: list[api.DeviceInfo]) -> None:
        self.text.setHtml(about_html(devices))
