"""The standalone window: start page actions, project save and restore, recent projects, crash restore,
settings, about, export. Under Xvfb (pytest-xvfb): napari cannot add layers without an X server.

Dialogs are scripted through ``window.prompts`` (a native file dialog would block the test).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gcl_app.standalone import project_file as pf
from gcl_app.standalone.about import about_html, sample_data_licences
from gcl_app.standalone.sessions import CONFIG_ENV, RecentProjects
from gcl_app.standalone.settings import apply_job_settings, job_settings
from gcl_app.widgets import annotation_layers as tied
from qtpy.QtCore import Qt

from gcl_engine import api
from tests.app.qt_helpers import release
from tests.app.synthetic import synthetic_ct, write_scan

READY_MS = 60_000


class ScriptedPrompts:
    """Answers the window's questions the way the test says; records the errors it was shown."""

    def __init__(self, folder: str | None = None, files: list[str] | None = None, save: str | None = None,
                 confirm: bool = True) -> None:
        self.answer_folder, self.answer_files, self.answer_save, self.answer_confirm = folder, files, save, confirm
        self.answer_new_folder: str | None = None  # None: the folder the window proposes
        self.proposed: list[str] = []
        self.errors: list[str] = []
        self.questions: list[str] = []

    def folder(self, title: str, start: str = "") -> str | None:
        return self.answer_folder

    def files(self, title: str, start: str = "") -> list[str]:
        return list(self.answer_files or [])

    def save_file(self, title: str, default: str) -> str | None:
        return self.answer_save or default

    def new_folder(self, title: str, default: str) -> str | None:
        self.proposed.append(default)
        return self.answer_new_folder or default

    def confirm(self, title: str, text: str) -> bool:
        self.questions.append(text)
        return self.answer_confirm

    def error(self, title: str, text: str) -> None:
        self.errors.append(text)


@pytest.fixture
def dirs(tmp_path, monkeypatch) -> dict[str, Path]:
    """A private user config folder and projects folder: the tests never touch the real ones."""
    paths = {"config": tmp_path / "config", "projects": tmp_path / "projects"}
    monkeypatch.setenv(CONFIG_ENV, str(paths["config"]))
    monkeypatch.setenv(pf.PROJECTS_ENV, str(paths["projects"]))
    return paths


@pytest.fixture
def make_window(qtbot, dirs):
    from gcl_app.standalone.main import create_app
    from gcl_app.standalone.window import MainWindow

    create_app()
    windows = []

    def make() -> MainWindow:
        window = MainWindow(config_folder=dirs["config"])
        window.prompts = ScriptedPrompts()
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    release(qtbot, windows)  # closed and deleted now: a live QtViewer would fail a later make_napari_viewer


@pytest.fixture
def two_scans(tmp_path) -> Path:
    folder = tmp_path / "my scans"
    folder.mkdir()
    for i in range(2):
        write_scan(folder / f"patient{i}_ct.nii.gz", synthetic_ct(i, shape=(6, 24, 28)))
    return folder


def wait_ready(qtbot, window, action) -> str:
    with qtbot.waitSignal(window.workspace.ready, timeout=READY_MS) as blocker:
        action()
    return blocker.args[0]


def test_main_window_opens_on_the_start_page(make_window):
    window = make_window()
    assert window.pages.currentWidget() is window.start_page
    assert window.windowTitle() == "GCL Studio"
    assert [a.text().replace("&", "") for a in window.menuBar().actions()] == ["File", "Settings", "Help"]
    assert not any(action.isEnabled() for action in window.project_actions.values())
    assert window.start_page.recent.item(0).text() == "none yet"


def test_new_project_from_a_scan_folder(make_window, qtbot, two_scans, dirs):
    window = make_window()
    window.prompts.answer_folder = str(two_scans)
    root = Path(wait_ready(qtbot, window, window.start_page.buttons["new"].click))
    assert root.parent == dirs["projects"] and root.name == "my_scans" and pf.is_project(root)
    images = window.workspace.images()
    assert len(images) == 1 and images[0].data.shape == (6, 24, 28)
    assert tied.find_layer(window.viewer, images[0], tied.ANNOTATIONS) is not None  # ready to paint
    panels = window.workspace.panels
    assert panels.data.folder_path() == str(two_scans)
    qtbot.waitUntil(lambda: panels.data.scan_result is not None, timeout=30_000)
    assert len(panels.data.scan_result.volumes) == 2
    assert window.pages.currentWidget() is window.qt_viewer and "my_scans" in window.windowTitle()
    assert all(action.isEnabled() for action in window.project_actions.values())
    assert RecentProjects(dirs["config"]).list() == [root]


def test_a_project_saves_and_restores_scans_annotations_and_models(make_window, qtbot, two_scans):
    window = make_window()
    window.prompts.answer_folder = str(two_scans)
    root = Path(wait_ready(qtbot, window, window.start_page.buttons["new"].click))
    window.prompts.answer_files = [str(two_scans / "patient1_ct.nii.gz")]
    wait_ready(qtbot, window, window.ask_open_scans)
    first, second = window.workspace.images()
    second.visible = False
    annotations = tied.find_layer(window.viewer, second, tied.ANNOTATIONS)  # the last opened is being annotated
    annotations.data[2, 5:15, 6:20] = 1
    window.workspace.panels.finetune.autosaver.mark_dirty()
    model = root / "models" / "patient1_ct-v001.pt"
    model.write_bytes(b"a checkpoint stands here")
    window.workspace.project.update(model=str(model), threads=3)
    window.close()  # a clean close saves project.json and the annotations

    again = make_window()
    again.prompts.answer_folder = str(root)
    wait_ready(qtbot, again, again.start_page.buttons["open"].click)
    names = [layer.name for layer in again.workspace.images()]
    assert names == [first.name, second.name]
    assert [layer.visible for layer in again.workspace.images()] == [True, False]
    restored = tied.find_layer(again.viewer, again.workspace.images()[1], tied.ANNOTATIONS)
    assert restored is not None and int(restored.data.sum()) == 10 * 14 and restored.data[2, 5, 6] == 1
    assert again.workspace.panels.finetune.image.name == second.name
    assert Path(str(again.workspace.panels.export.model.value)) == model
    assert job_settings(again.workspace.project)["threads"] == 3


def test_open_refuses_a_folder_that_is_no_project(make_window, tmp_path):
    window = make_window()
    window.prompts.answer_folder = str(tmp_path)
    window.start_page.buttons["open"].click()
    assert window.workspace.project is None and "not a GCL Studio project" in window.prompts.errors[0]


def test_sample_project_opens_the_ct_with_its_hidden_reference(make_window, qtbot, dirs):
    window = make_window()
    root = Path(wait_ready(qtbot, window, window.start_page.buttons["sample"].click))
    assert root == pf.sample_project_dir(dirs["projects"])
    image = window.workspace.images()[0]
    assert image.data.shape == api.load_volume(api.sample_paths()["ct"]).array.shape
    reference = [layer for layer in window.viewer.layers if layer.metadata.get("gcl_role") == "labels"]
    assert len(reference) == 1 and not reference[0].visible
    assert window.workspace.panels.finetune.classes.names() == ["background", "liver"]
    assert pf.read_project_file(root).scans[0].path == "sample:scans/example_ct_sm.nii.gz"


def test_recent_projects_on_the_start_page_and_in_the_menu(make_window, qtbot, two_scans):
    window = make_window()
    window.prompts.answer_folder = str(two_scans)
    root = wait_ready(qtbot, window, window.start_page.buttons["new"].click)
    window.close_project()
    assert window.pages.currentWidget() is window.start_page
    item = window.start_page.recent.item(0)
    assert item.data(Qt.ItemDataRole.UserRole) == root
    assert wait_ready(qtbot, window, lambda: window.start_page.recent.itemActivated.emit(item)) == root
    window.fill_recent_menu()
    assert [a.text() for a in window.recent_menu.actions()] == [root]


def test_after_a_crash_the_next_start_offers_the_last_project(make_window, qtbot, dirs, tmp_path):
    project = tmp_path / "crashed project"
    project.mkdir()
    pf.write_project_file(project, pf.ProjectFile())
    crash = ("import os, sys; from pathlib import Path; from gcl_app.standalone.sessions import SessionLock; "
             "SessionLock(Path(sys.argv[1])).hold(Path(sys.argv[2])); os._exit(9)")
    done = subprocess.run([sys.executable, "-c", crash, str(dirs["config"]), str(project)], timeout=60)
    assert done.returncode == 9
    window = make_window()
    assert wait_ready(qtbot, window, lambda: window.offer_restore()) == str(project.resolve())
    assert "did not close properly" in window.prompts.questions[0]
    window.close()
    assert not make_window().offer_restore()  # handled once; a clean close leaves nothing to offer


def test_settings_are_stored_in_the_project_and_laid_over_jobs(make_window, qtbot, two_scans, tmp_path):
    window = make_window()
    window.prompts.answer_folder = str(two_scans)
    wait_ready(qtbot, window, window.start_page.buttons["new"].click)
    dialog = window.settings_dialog()
    dialog.threads.setValue(2)
    dialog.cache.setText(str(tmp_path / "cache"))
    dialog.device.addItem("cpu", "cpu")
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.accept()
    stored = job_settings(window.workspace.project)
    assert stored == {"device": "cpu", "cache_folder": str(tmp_path / "cache"), "threads": 2}
    pretrain = apply_job_settings(stored, "pretrain", api.PretrainConfig(folder="f", out="o"))
    assert (pretrain.threads, pretrain.cache, pretrain.device) == (2, str(tmp_path / "cache"), "cpu")
    explicit = apply_job_settings(stored, "finetune", api.FinetuneConfig(device="cuda"))
    assert (explicit.threads, explicit.device) == (2, "cuda")  # a device chosen in a panel wins


def test_about_names_versions_devices_and_the_sample_data_licences():
    text = about_html([api.DeviceInfo("cpu", "CPU (2 cores)", None)])
    assert f"GCL Studio {api.__version__}" in text and "torch" in text and "napari" in text
    assert "cpu (CPU (2 cores))" in text
    rows = sample_data_licences()
    assert any(row[0].startswith("example_ct_sm") and row[2] == "Apache-2.0" for row in rows)
    assert all(row[2] for row in rows)


def test_export_masks_from_the_file_menu_keeps_the_source_geometry(make_window, qtbot, tmp_path):
    window = make_window()
    wait_ready(qtbot, window, window.start_page.buttons["sample"].click)
    image = window.workspace.images()[0]
    annotations = tied.find_layer(window.viewer, image, tied.ANNOTATIONS)
    annotations.data[12, 40:60, 30:70] = 1
    window.viewer.layers.selection.active = annotations
    target = tmp_path / "out" / "liver.nii.gz"
    window.prompts.answer_save = str(target)
    window.ask_export_masks()
    qtbot.waitUntil(target.is_file, timeout=30_000)
    back, source = api.load_volume(target), api.load_volume(api.sample_paths()["ct"])
    assert np.array_equal(back.array, annotations.data)
    assert np.allclose(back.geometry.origin, source.geometry.origin)
    assert np.allclose(back.geometry.direction, source.geometry.direction)
    assert np.allclose(back.geometry.spacing, source.geometry.spacing)


def test_switching_projects_while_scans_load_keeps_each_project_whole(make_window, qtbot, two_scans, dirs):
    window = make_window()
    window.open_sample()  # starts reading the sample CT in a worker
    sample = window.workspace.project.root
    assert wait_ready(qtbot, window, lambda: window.new_project(str(two_scans))) != str(sample)
    qtbot.wait(300)  # let a late result of the superseded load arrive, if one were still coming
    assert [layer.name for layer in window.workspace.images()] == ["patient0_ct"]
    assert [entry.path for entry in pf.read_project_file(sample).scans] == [
        "sample:scans/example_ct_sm.nii.gz", "sample:labels/example_seg.nii.gz"]


# --- a clinician's first hour (issue 16) -------------------------------------------------------------

def test_new_project_asks_for_its_name_and_place(make_window, qtbot, two_scans, tmp_path):
    window = make_window()
    window.prompts.answer_folder = str(two_scans)
    window.prompts.answer_new_folder = str(tmp_path / "studies" / "liver study")
    root = Path(wait_ready(qtbot, window, window.start_page.buttons["new"].click))
    assert root == tmp_path / "studies" / "liver study" and pf.is_project(root)
    assert window.prompts.proposed and "my_scans" in window.prompts.proposed[0]


def test_new_project_cancelled_at_its_name_creates_nothing(make_window, two_scans, dirs):
    window = make_window()
    window.prompts.answer_folder = str(two_scans)
    window.prompts.new_folder = lambda title, default: None  # the user cancels the second question
    window.start_page.buttons["new"].click()
    assert window.workspace.project is None and not dirs["projects"].exists()


def test_new_project_opens_a_still_volume_first(make_window, qtbot, tmp_path):
    """The sample folder's first volume (by name) is a cardiac cine: 16 phases of one slice on the slider."""
    scans = Path(api.sample_paths()["scans"])
    window = make_window()
    window.prompts.answer_folder = str(scans)
    wait_ready(qtbot, window, window.start_page.buttons["new"].click)
    [image] = window.workspace.images()
    assert image.name != "cardiac_cine_s1" and image.data.shape[0] >= 20


def test_an_unreadable_scan_is_said_and_not_stored(make_window, qtbot, two_scans, tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a scan")
    window = make_window()
    window.prompts.answer_folder = str(two_scans)
    root = Path(wait_ready(qtbot, window, window.start_page.buttons["new"].click))
    messages = []
    window.workspace.message.connect(messages.append)
    window.prompts.answer_files = [str(bad)]
    wait_ready(qtbot, window, window.ask_open_scans)
    assert "broken.nii.gz" in messages[-1] and "Could not open" in messages[-1]  # the last word names it
    assert "broken.nii.gz" in window.statusBar().currentMessage()
    assert "broken" not in (root / pf.PROJECT_FILE).read_text()


def test_closing_during_pretraining_says_the_truth_and_keeps_a_checkpoint(make_window, qtbot, two_scans):
    from tests.app.synthetic import TINY

    window = make_window()
    window.prompts.answer_folder = str(two_scans)
    wait_ready(qtbot, window, window.start_page.buttons["new"].click)
    data = window.workspace.panels.data
    project = window.workspace.project
    form = data.form
    form.size.value, form.base_channels.value, form.levels.value = TINY["size"], TINY["base_channels"], TINY["levels"]
    form.steps.value, form.checkpoint_every.value, form.device.value = 3000, 1000, "cpu"
    data.start_button.click()
    qtbot.waitUntil(lambda: data.progress.text.text().startswith("pretrain") and data.progress.bar.value() >= 2,
                    timeout=120_000)
    window.close()
    [question] = window.prompts.questions
    assert "Its last checkpoint is kept" not in question and "no checkpoint exists yet" in question
    assert not window.isVisible()
    run = project.last_run()
    assert (run / "last.pt").is_file() and project.get("pretrained") == str(run / "last.pt")  # cancelled properly
