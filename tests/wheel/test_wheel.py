"""The built wheel works as a napari hub user gets it: installed into a fresh environment, not this checkout.

The fresh venv sees the dependencies already installed in this one (a folder of links to its site-packages,
minus gcl-studio's own editable install), so nothing is downloaded twice; gcl-studio itself comes only from
the wheel. Every check runs in that venv, from a folder outside the checkout, so nothing can fall back on
the source tree: npe2 validates the manifest, napari opens the sample from the wheel's data, and the reader
reads a NIfTI without loading torch (what napari does with every file a user drops on it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from gcl_engine import __version__

REPO = Path(__file__).resolve().parents[2]
OWN_FILES = ("__editable__", "gcl_studio-", "gcl_engine", "gcl_app", "gcl_resources")
QT_BINDINGS = ("pyside2", "pyside6", "pyside6-essentials", "pyqt5", "pyqt6")

PROBE = r"""
import json, sys
from pathlib import Path
import numpy as np
from napari.components import ViewerModel
import gcl_engine, gcl_app
from gcl_engine.io.sample_data import sample_data_dir

from npe2 import PluginManager

PluginManager.instance().discover()  # what napari does at start: plugins come from installed entry points
report = {"engine": gcl_engine.__file__, "app": gcl_app.__file__, "samples": str(sample_data_dir())}
viewer = ViewerModel()
viewer.open_sample("gcl-studio", "ct")  # File > Open Sample > GCL Studio, without a window
report["sample_layers"] = [(layer.name, type(layer).__name__, list(layer.data.shape)) for layer in viewer.layers]
path = Path(sys.argv[1])
[layer] = ViewerModel().open(str(path), plugin="gcl-studio")
report["read_shape"] = list(layer.data.shape)
report["read_equal"] = bool(np.array_equal(layer.data, np.load(sys.argv[2])))
report["torch_loaded"] = "torch" in sys.modules
print(json.dumps(report))
"""


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, capture_output=True, text=True, encoding="utf-8", errors="replace", cwd=cwd, env=env,
                         timeout=600)  # npe2 prints a check mark, whatever the locale
    assert out.returncode == 0, f"{' '.join(map(str, argv))}\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)], cwd=out)
    [built] = out.glob("gcl_studio-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_python(wheel, tmp_path_factory) -> Path:
    """A new venv with the wheel installed (no dependencies) and this venv's other packages linked beside it."""
    root = tmp_path_factory.mktemp("hub-user")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)], cwd=root)
    deps = root / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(OWN_FILES) and not entry.name.endswith(".pth"):
            (deps / entry.name).symlink_to(entry)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=root).stdout.strip())
    (site / "zz_dependencies.pth").write_text(f"{deps}\n")
    return python


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(zf.read(name).decode()), zf.namelist()


def test_wheel_metadata_is_ready_for_the_hub(wheel):
    meta, names = _metadata(wheel)
    assert meta["Version"] == __version__  # one source: gcl_engine.__version__
    assert meta["License-Expression"] == "Apache-2.0"
    assert "Framework :: napari" in meta.get_all("Classifier")
    assert meta["Author"] or meta["Author-email"]
    assert meta.get_all("Project-URL")
    with zipfile.ZipFile(wheel) as zf:
        licence = zf.read(next(n for n in names if n.endswith("licenses/LICENSE"))).decode()
    assert "Apache License" in licence and "Version 2.0" in licence
    by_extra: dict[str, set[str]] = {}
    for req in map(Requirement, meta.get_all("Requires-Dist")):
        extras = [e for e in ("napari", "standalone", "dev") if req.marker and req.marker.evaluate({"extra": e})]
        for extra in extras or [""]:
            by_extra.setdefault(extra, set()).add(req.name.lower())
    assert "napari" in by_extra["napari"] and not by_extra["napari"] & set(QT_BINDINGS)  # no Qt binding
    assert not by_extra[""] & set(QT_BINDINGS)
    assert {"pyside6-essentials", "gcl-studio"} <= by_extra["standalone"]
    assert any(n.startswith("gcl_resources/sample_data/scans/example_ct_sm") for n in names)
    assert any(n == "gcl_resources/icons/gcl-studio.png" for n in names)


def test_npe2_validates_the_installed_manifest(fresh_python, tmp_path):
    out = _run([str(fresh_python), "-m", "npe2", "validate", "gcl-studio", "--imports"], cwd=tmp_path)
    assert "valid" in out.stdout.lower(), out.stdout
    code = ("from npe2 import PluginManifest; m = PluginManifest.from_distribution('gcl-studio'); "
            "import importlib.resources as r; pkg, name = m.icon.split(':'); "
            "print(r.files(pkg).joinpath(name).is_file(), sorted(m.contributions.menus), "
            "[str(c) for c in m.categories])")
    shown = _run([str(fresh_python), "-c", code], cwd=tmp_path).stdout
    assert shown.startswith("True") and "napari/layers/segment" in shown and "Segmentation" in shown


def test_installed_plugin_opens_the_sample_and_reads_a_nifti_without_torch(fresh_python, tmp_path):
    import numpy as np

    from tests.app.synthetic import synthetic_ct, write_scan

    path = write_scan(tmp_path / "oblique_ct.nii.gz", synthetic_ct(5))
    np.save(tmp_path / "expected.npy", synthetic_ct(5))
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GCL_STUDIO_SAMPLE_DATA")}
    out = _run([str(fresh_python), str(probe), str(path), str(tmp_path / "expected.npy")], cwd=tmp_path, env=env)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    site = str(fresh_python.parent.parent)
    for key in ("engine", "app", "samples"):  # the wheel's files, never the checkout's
        assert report[key].startswith(site) and not report[key].startswith(str(REPO)), report
    names = [name for name, _kind, _shape in report["sample_layers"]]
    assert names == ["sample CT", "reference labels"], report
    assert report["read_equal"], report
    assert not report["torch_loaded"], "the napari reader loaded torch to read a NIfTI"
