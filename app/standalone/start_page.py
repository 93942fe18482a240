"""The page a user sees before any project is open: the three ways in, and the recent projects.

A clinician who double-clicked the app has no scan open and no idea what a "layer" is; this page
says what each way in does in one line and keeps the last projects one click away.
"""

from __future__ import annotations

from pathlib import Path

from gcl_app.standalone.assets import icon_path
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QIcon
from qtpy.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

RECENT_HEIGHT = 240
ACTIONS = (
    ("new", "New project from a scan folder…",
     "Choose a folder of CT or MR scans (NIfTI, NRRD, MHA, DICOM), then name the project and where it is "
     "saved; GCL Studio lists the scans and opens one to annotate."),
    ("open", "Open project…", "Reopen a project folder: its scans, annotations, runs and models come back."),
    ("sample", "Open the sample project",
     "A small abdominal CT with reference labels, bundled with the app: try the whole loop in minutes."),
)


class StartPage(QWidget):
    """Buttons emit ``requested(action)``; a recent project emits ``recent_chosen(path)``."""

    requested = Signal(str)  # "new", "open", "sample"
    recent_chosen = Signal(str)

    def __init__(self, version: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.buttons: dict[str, QPushButton] = {}
        title = QHBoxLayout()
        icon = icon_path()
        if icon is not None:
            picture = QLabel(self)
            picture.setPixmap(QIcon(str(icon)).pixmap(56, 56))
            title.addWidget(picture)
        title.addWidget(QLabel("<h1>GCL Studio</h1>", self), 1)
        subtitle = QLabel("Segment medical scans from a handful of painted slices: pre-train on your own "
                          "unlabeled scans, paint a few slices, fine-tune, export NIfTI.", self)
        subtitle.setWordWrap(True)
        grid = QGridLayout()
        for row, (key, label, hint) in enumerate(ACTIONS):
            button = QPushButton(label, self)
            button.setMinimumHeight(36)
            button.clicked.connect(lambda _checked=False, k=key: self.requested.emit(k))
            text = QLabel(hint, self)
            text.setWordWrap(True)
            grid.addWidget(button, row, 0)
            grid.addWidget(text, row, 1)
            self.buttons[key] = button
        grid.setColumnStretch(1, 1)
        self.recent = QListWidget(self)
        self.recent.setMaximumHeight(RECENT_HEIGHT)
        self.recent.setStyleSheet("QListWidget::item { padding: 5px; }")
        self.recent.itemActivated.connect(lambda item: self.recent_chosen.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.recent_label = QLabel("<b>Recent projects</b> (double-click to open)", self)
        footer = QLabel(f"version {version} · Help ▸ About lists the versions and licences", self)
        footer.setEnabled(False)
        self._layout(title, subtitle, grid, footer)

    def _layout(self, title: QHBoxLayout, subtitle: QLabel, grid: QGridLayout, footer: QLabel) -> None:
        card = QFrame(self)
        card.setMaximumWidth(900)
        inner = QVBoxLayout(card)
        inner.addLayout(title)
        inner.addWidget(subtitle)
        inner.addSpacing(12)
        inner.addLayout(grid)
        inner.addSpacing(12)
        inner.addWidget(self.recent_label)
        inner.addWidget(self.recent)
        inner.addSpacing(8)
        inner.addWidget(footer)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(40, 30, 40, 30)
        outer.addStretch(1)
        outer.addWidget(card, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)

    def set_recent(self, projects: list[Path]) -> None:
        self.recent.clear()
        for path in projects:
            item = QListWidgetItem(f"{path.name}     ({path.parent})")
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            item.setToolTip(str(path))
            self.recent.addItem(item)
        if not projects:
            self.recent.addItem(QListWidgetItem("none yet"))
            self.recent.item(0).setFlags(Qt.ItemFlag.NoItemFlags)
