"""Fixtures for the GUI tests: a project per test, small synthetic scans, tiny training configs.

GUI tests need an X server (napari cannot add image layers offscreen); pytest-xvfb starts Xvfb.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

if importlib.util.find_spec("gcl_app") is None:  # pragma: no cover - an install problem, not a test
    raise ImportError("gcl_app is not importable: the distribution must map gcl_app -> app/ "
                      "(pyproject [tool.setuptools] packages) and be installed with `pip install -e .`")

from gcl_app.project import PROJECT_ENV, Project  # noqa: E402

from tests.app.synthetic import synthetic_ct, write_scan  # noqa: E402


@pytest.fixture(autouse=True)
def _project_env(tmp_path, monkeypatch):
    """Panels opened from the manifest use $GCL_STUDIO_PROJECT: point it into the test's folder."""
    monkeypatch.setenv(PROJECT_ENV, str(tmp_path / "project"))


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
