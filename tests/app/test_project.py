"""Project folder: settings survive a reopen, listeners never keep a panel alive, annotations round trip."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
from gcl_app.project import Project

from gcl_engine import api
from gcl_engine.io import writers
from tests.app.synthetic import oblique_direction


def test_settings_are_written_and_read_back(tmp_path):
    project = Project(tmp_path / "p")
    project.update(scan_folder="/data/scans", autosave_s=5)
    assert json.loads((tmp_path / "p" / "settings.json").read_text())["scan_folder"] == "/data/scans"
    again = Project(tmp_path / "p")
    assert again.get("scan_folder") == "/data/scans" and again.get("autosave_s") == 5
    assert {p.name for p in (tmp_path / "p").iterdir()} >= {"runs", "models", "annotations"}


def test_a_damaged_settings_file_falls_back_to_defaults(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "settings.json").write_text("{ not json")
    assert Project(tmp_path / "p").get("autosave_s") == 30


def test_listeners_hear_changes_and_are_held_weakly(tmp_path):
    project, heard = Project(tmp_path), []

    class Panel:
        def on_change(self, key):
            heard.append(key)

    panel = Panel()
    project.add_listener(panel.on_change)
    project.update(model="m.pt")
    assert heard == ["model"]
    del panel
    gc.collect()
    project.update(model="n.pt")  # the dead listener is skipped, not called
    assert heard == ["model"]


def test_model_paths_never_reuse_an_existing_file(tmp_path):
    project = Project(tmp_path)
    (tmp_path / "models" / "ct_1-v001.pt").touch()
    (tmp_path / "models" / "ct_1-v003.pt").touch()
    assert project.new_model_path("ct 1").name == "ct_1-v004.pt"


def test_annotations_round_trip_with_geometry_and_names(tmp_path):
    project = Project(tmp_path)
    geometry = api.Geometry((0.8, 0.9, 2.5), (1.0, 2.0, 3.0), oblique_direction())
    labels = np.zeros((6, 10, 12), np.uint8)
    labels[2, 3:6, 4:9] = 2
    path = project.save_annotations(labels, geometry, "scan/01", ["background", "liver", "spleen"])
    assert path.parent == tmp_path / "annotations"
    array, names, problem = project.load_annotations("scan/01", labels.shape)
    np.testing.assert_array_equal(array, labels)
    assert names == {0: "background", 1: "liver", 2: "spleen"} and problem == ""
    assert api.load_volume(path).geometry.allclose(geometry, tol=1e-5)
    assert project.load_annotations("scan/01", (6, 10, 13)) is None  # another grid: never misapplied
    assert project.load_annotations("other", labels.shape) is None


def test_annotations_whose_names_file_is_stale_come_back_without_the_wrong_names(tmp_path, monkeypatch):
    project = Project(tmp_path)
    geometry = api.Geometry((0.8, 0.9, 2.5), (1.0, 2.0, 3.0), oblique_direction())
    labels = np.zeros((6, 10, 12), np.uint8)
    labels[2, 3:6, 4:9] = 1
    project.save_annotations(labels, geometry, "scan/01", ["background", "liver"])
    labels[3, 3:6, 4:9] = 2

    def killed(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers, "atomic_write_text", killed)  # the autosave stops after the label map
    with pytest.raises(OSError):
        project.save_annotations(labels, geometry, "scan/01", ["background", "spleen", "kidney"])
    monkeypatch.undo()
    restored = project.load_annotations("scan/01", labels.shape)
    np.testing.assert_array_equal(restored.array, labels)  # every painted voxel is back
    assert restored.names == {} and "interrupted" in restored.problem
