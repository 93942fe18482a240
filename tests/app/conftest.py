"""Fixtures for the GUI tests: a project per test, small synthetic scans, tiny training configs.

GUI tests need an X server (napari cannot add image layers offscreen); pytest-xvfb starts Xvfb.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("gcl_app") is None:  # pragma: no cover - an install problem, not a test
    raise ImportError("gcl_app is not importable: the distribution must map gcl_app -> app/ "
                      "(pyproject [tool.setuptools] packages) and be installed with `pip install -e .`")

from gcl_app.project import PROJECT_ENV, Project  # noqa: E402

from gcl_engine import api  # noqa: E402
from tests.app.synthetic import TINY, synthetic_ct, write_scan  # noqa: E402


@pytest.fixture(autouse=True)
def _project_env(tmp_path, monkeypatch):
    """Panels opened from the manifest use $GCL_STUDIO_PROJECT: point it into the test's folder."""
    monkeypatch.setenv(PROJECT_ENV, str(tmp_path / "project"))


@pytest.fixture(autouse=True)
def _collect_left_viewers():
    """After each GUI test, collect viewers still alive in reference cycles. napari's ``make_napari_viewer``
    fails the NEXT test that uses it when a QtViewer of an earlier test is alive after its partial collection;
    which test comes next depends on the order (pytest-xdist hands files to two workers), so each test leaves
    none behind. Leaks a window must not have are tested where they matter (test_reliability_gui)."""
    yield
    qt_viewer = sys.modules.get("napari._qt.qt_viewer")
    if qt_viewer is not None and len(qt_viewer.QtViewer._instances):
        gc.collect()


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path / "project")


@pytest.fixture
def scan_folder(tmp_path) -> Path:
    """Three small CT-like NIfTI volumes (two subjects) and one file the scan must skip."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for i, name in enumerate(("subjA_ct.nii.gz", "subjB_ct.nii.gz", "subjC_ct.nii.gz")):
        write_scan(folder / name, synthetic_ct(i))
    (folder / "notes.nii.gz").write_bytes(b"this is not an image")
    return folder


@pytest.fixture
def oblique_nifti(tmp_path) -> Path:
    return write_scan(tmp_path / "oblique_ct.nii.gz", synthetic_ct(5))


def _run_cli(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory) -> Path:
    """A real (tiny) pre-training checkpoint made by the engine's CLI: RUN/last.pt beside RUN/config.json."""
    root = tmp_path_factory.mktemp("tiny_pretrain")
    folder = root / "scans"
    folder.mkdir()
    for i in range(2):
        write_scan(folder / f"subj{i}_ct.nii.gz", synthetic_ct(i))
    base = api.PretrainConfig()
    cfg = api.PretrainConfig(folder=str(folder), out=str(root / "run"), steps=2, device="cpu", threads=1,
                             volumes_per_batch=2, preprocess=dataclasses.replace(base.preprocess, size=TINY["size"]),
                             model=dataclasses.replace(base.model, base_channels=TINY["base_channels"],
                                                       levels=TINY["levels"]))
    (root / "cfg.json").write_text(api.to_json(cfg))
    _run_cli(api.job_command("pretrain", root / "cfg.json"))
    return root / "run" / "last.pt"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_pretrained) -> Path:
    """A tiny fine-tuned model (background, liver) on the sample CT, made by the engine's CLI."""
    root = tmp_path_factory.mktemp("tiny_model")
    paths = api.sample_paths()
    reference = api.load_volume(paths["ct_labels"])
    labels = np.zeros_like(reference.array)
    for k in (8, 15, 22):
        labels[k] = reference.array[k] == 5
    api.export_nifti(labels, reference.geometry, root / "labels.nii.gz", ["background", "liver"])
    run = api.load_json(api.PretrainConfig, tiny_pretrained.parent / "config.json")
    cfg = api.FinetuneConfig(image=str(paths["ct"]), labels=str(root / "labels.nii.gz"), out=str(root / "model.pt"),
                             pretrained=str(tiny_pretrained), class_names=("background", "liver"), steps=3,
                             device="cpu", threads=1, preprocess=run.preprocess, model=run.model)
    (root / "cfg.json").write_text(api.to_json(cfg))
    _run_cli(api.job_command("finetune", root / "cfg.json"))
    return root / "model.pt"


def pytest_collection_modifyitems(items):
    """napari warns that an oblique scan is shown without its out-of-plane rotation: expected here."""
    for item in items:
        if "tests/app" in str(item.fspath):
            item.add_marker(pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning"))
