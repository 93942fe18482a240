"""Every question the main window asks the user goes through one object, so tests can script answers.

Native file dialogs block in a nested event loop that a test cannot click through; replacing
``window.prompts`` with an object of the same methods drives every menu and start-page action.
"""

from __future__ import annotations

from qtpy.QtWidgets import QFileDialog, QMessageBox, QWidget

SCAN_FILTER = "Scans (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.dcm);;All files (*)"
MASK_FILTER = "NIfTI (*.nii.gz *.nii);;DICOM SEG, beside a DICOM series (*.dcm)"


class Prompts:
    def __init__(self, parent: QWidget) -> None:
        self.parent = parent

    def folder(self, title: str, start: str = "") -> str | None:
        return QFileDialog.getExistingDirectory(self.parent, title, start) or None

    def files(self, title: str, start: str = "") -> list[str]:
        paths, _filter = QFileDialog.getOpenFileNames(self.parent, title, start, SCAN_FILTER)
        return list(paths)

    def new_folder(self, title: str, default: str) -> str | None:
        """A folder to create: the user types its name where they want it (it need not exist yet)."""
        path, _filter = QFileDialog.getSaveFileName(self.parent, title, default, "GCL Studio project (folder)")
        return path or None

    def save_file(self, title: str, default: str) -> str | None:
        path, _filter = QFileDialog.getSaveFileName(self.parent, title, default, MASK_FILTER)
        return path or None

    def confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self.parent, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def error(self, title: str, text: str) -> None:
        QMessageBox.warning(self.parent, title, text)
