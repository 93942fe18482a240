"""Nothing leaks through the GUI: the standalone app on DICOM series with known patient identifiers (open,
annotate, pre-train, fine-tune, export a mask and the ONNX model), then every file it left in the project and
config folders, every message it showed and everything it logged is searched for the identifiers.

The engine's own run (the CLI) is checked in ``tests/reliability/test_privacy_and_network.py``; this adds what
only the app writes or shows: project.json, settings.json, job configs, autosaved annotations, the scan table,
layer names, status lines, recent projects and session notes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from gcl_app.standalone import project_file as pf
from gcl_app.standalone.sessions import CONFIG_ENV
from gcl_app.widgets import annotation_layers as tied

from gcl_engine import api
from tests.app.qt_helpers import release
from tests.app.synthetic import TINY
from tests.app.test_standalone import ScriptedPrompts, wait_ready
from tests.reliability.dicom_factory import SECRETS, write_series

OTHER_PATIENT = {"0010|0010": "Roebuck^Richardine", "0010|0020": "PID-08153342-ABC", "0010|0030": "19650505"}
ALL_SECRETS = (*SECRETS, "Roebuck", "Richardine", "PID-08153342-ABC", "08153342", "19650505")
JOB_MS = 120_000


def leaks_in_files(root: Path) -> list[str]:
    """Identifiers in the content or the name of any file under ``root`` (binary files included)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_dir()):
        name_hits = [s for s in ALL_SECRETS if s in path.name]
        found += [f"{path} (its name): {s}" for s in name_hits]
        if path.is_file():
            blob = path.read_bytes()
            found += [f"{path}: {s}" for s in ALL_SECRETS if s.encode() in blob or s.encode("utf-16-le") in blob]
    return found


def leaks_in_texts(texts: dict[str, str]) -> list[str]:
    return [f"{where}: {s}" for where, text in texts.items() for s in ALL_SECRETS if s in text]


def standalone_windows(qtbot, tmp_path: Path, monkeypatch):
    """Generator behind the ``standalone`` fixtures: a factory of windows on private config and projects folders
    (dialogs scripted), every window closed and deleted afterwards."""
    from gcl_app.standalone.main import create_app
    from gcl_app.standalone.window import MainWindow

    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "config"))
    monkeypatch.setenv(pf.PROJECTS_ENV, str(tmp_path / "projects"))
    create_app()
    windows = []

    def make():
        window = MainWindow(config_folder=tmp_path / "config")
        window.prompts = ScriptedPrompts()
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    make.release = lambda: release(qtbot, windows)  # close and delete every window made so far
    yield make
    release(qtbot, windows)


@pytest.fixture
def standalone(qtbot, tmp_path, monkeypatch):
    yield from standalone_windows(qtbot, tmp_path, monkeypatch)


def record_everything(window, shown: list[str]) -> None:
    """Every message the window shows and every event its jobs send, as text."""
    window.workspace.message.connect(shown.append)
    window.statusBar().messageChanged.connect(shown.append)
    panels = window.workspace.panels
    for panel in (panels.data, panels.finetune):
        for signal in (panel.runner.log, panel.runner.progress, panel.runner.checkpoint, panel.runner.finished,
                       panel.runner.metric):
            signal.connect(lambda event: shown.append(repr(event)))
        panel.runner.failed.connect(shown.append)


def test_a_gui_session_on_identified_dicom_leaks_no_identifier(standalone, qtbot, tmp_path, caplog, capfd,
                                                               monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("GCL_STUDIO_LOG_DIR", str(tmp_path / "logs"))  # the session's log file, searched below
    monkeypatch.delenv("GCL_STUDIO_LOG_FILE", raising=False)
    api.configure_logging(verbose=True)  # as gcl-studio's main() does (debug detail: the most there is to leak)
    scans = tmp_path / "scans"
    write_series(scans / "series_a", seed=0, series_uid="1.2.826.0.1.99.1")
    write_series(scans / "series_b", seed=1, series_uid="1.2.826.0.1.99.2", patient=OTHER_PATIENT)
    project = tmp_path / "projects" / "study"
    shown: list[str] = []
    window = standalone()

    # open: a new project on the folder scans it and opens the first series for annotation
    wait_ready(qtbot, window, lambda: window.new_project(str(scans), str(project)))
    panels = window.workspace.panels
    record_everything(window, shown)
    qtbot.waitUntil(lambda: panels.data.scan_result is not None and panels.data.scan_view.filled, timeout=JOB_MS)
    assert len(panels.data.scan_result.volumes) == 2
    [image] = window.workspace.images()

    # annotate a few slices; the autosave writes them into the project
    annotations = tied.find_layer(window.viewer, image, tied.ANNOTATIONS)
    for k in (3, 6, 9):
        annotations.data[k] = (image.data[k] > 60).astype(annotations.data.dtype)
    panels.finetune.classes.set_names(["background", "organ"])
    with qtbot.waitSignal(panels.finetune.autosaver.saved, timeout=JOB_MS):
        panels.finetune.autosaver.save_now()

    # pre-train (tiny) on both series, then fine-tune from its checkpoint
    form = panels.data.form
    form.size.value, form.base_channels.value, form.levels.value = TINY["size"], TINY["base_channels"], TINY["levels"]
    form.steps.value, form.checkpoint_every.value, form.device.value = 3, 1000, "cpu"
    qtbot.waitUntil(lambda: panels.data.devices_known and panels.finetune.devices_known, timeout=JOB_MS)
    with qtbot.waitSignal(panels.data.runner.finished, timeout=JOB_MS) as pretrained:
        panels.data.start_button.click()
    assert pretrained.args[0].status == "completed"
    assert panels.finetune.form.pretrained_path() == panels.data.project.last_run() / "last.pt"
    panels.finetune.form.steps.value, panels.finetune.form.device.value = 3, "cpu"
    with qtbot.waitSignal(panels.finetune.preview_updated, timeout=JOB_MS, check_params_cb=lambda k: k == "volume"):
        panels.finetune.finetune_button.click()
    model = panels.finetune.project.current_model()
    assert model is not None

    # export: the annotations as NIfTI (File > Export masks) and the model as ONNX
    window.viewer.layers.selection.active = annotations
    window.prompts.answer_save = str(project / "exports" / "organ.nii.gz")
    window.ask_export_masks()
    qtbot.waitUntil(lambda: "Mask written" in panels.export.status.text(), timeout=JOB_MS)
    panels.export.export_onnx_button.click()
    qtbot.waitUntil(lambda: panels.export.export_onnx_button.isEnabled(), timeout=JOB_MS)
    assert "ONNX written" in panels.export.status.text(), panels.export.status.text()
    assert not any(panel.status.is_error for panel in (panels.data, panels.finetune, panels.export))

    # everything the window shows right now
    table = panels.data.scan_view.volumes
    shown += [table.item(r, c).text() for r in range(table.rowCount()) for c in range(table.columnCount())]
    shown += [table.item(r, 0).toolTip() for r in range(table.rowCount())]
    shown += [layer.name for layer in window.viewer.layers] + [window.windowTitle()]
    shown += [panel.status.text() for panel in (panels.data, panels.finetune, panels.export)]
    children = [line for panel in (panels.data, panels.finetune) for line in panel.runner._stderr]  # their stderr
    window.close()  # a clean close writes project.json and the last annotations

    captured = capfd.readouterr()
    texts = {"shown": "\n".join(shown), "log": caplog.text, "stdout": captured.out, "stderr": captured.err,
             "children's stderr": "\n".join(children)}
    written = [p for p in project.rglob("*") if p.is_file()]
    kinds = {p.relative_to(project).parts[0] for p in written}
    assert {"annotations", "runs", "models", "exports", "jobs", "settings.json", "project.json"} <= kinds, kinds
    audits = [line for line in (tmp_path / "logs" / "gcl-studio.log").read_text(encoding="utf-8").splitlines()
              if " AUDIT " in line]
    assert len(audits) == 2, audits  # the mask (painted: no model) and the ONNX model (with its hash)
    assert leaks_in_files(project) + leaks_in_files(tmp_path / "config") + leaks_in_texts(texts) == []
    assert leaks_in_files(tmp_path / "logs") == []  # the window's and the training children's log lines
