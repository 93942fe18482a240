"""The engine stays headless, its events cross process boundaries, and cancel works by file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from gcl_engine import api
from gcl_engine.runtime import FileCancelToken


def test_importing_the_api_loads_no_gui_toolkit():
    code = ("import sys, gcl_engine.api, gcl_engine.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'PyQt5', 'PyQt6', 'qtpy', 'napari', 'magicgui', 'superqt', 'vispy')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_importing_the_api_loads_neither_torch_nor_the_image_libraries():
    """The facade is cheap: heavy modules load on first use of a name that needs them."""
    code = ("import sys, gcl_engine.api as api; heavy = [m for m in ('torch', 'SimpleITK', 'nibabel', 'monai') "
            "if m in sys.modules]; print(heavy); "
            "assert api.Segmenter.__name__ == 'Segmenter' and 'torch' in sys.modules; sys.exit(1 if heavy else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_public_name_resolves():
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert set(api.__all__) <= set(dir(api))


def test_events_round_trip_through_json():
    events = [api.Progress("pretrain", 3, 10, "loss 1.0", 12.5), api.Metric("pretrain", 3, {"loss": 1.5}),
              api.CheckpointSaved("/x/last.pt", 3, "cancel"), api.Log("warning", "halved"),
              api.Finished("finetune", "completed", {"model": "m.pt"})]
    for event in events:
        assert api.event_from_json(event.to_json()) == event
    preview = api.event_from_json(api.Preview(5, [2], [np.eye(3, dtype=np.uint16)]).to_json())
    assert np.array_equal(np.asarray(preview.masks[0]), np.eye(3))


def test_job_command_runs_the_cli_module(tmp_path):
    argv = api.job_command("finetune", tmp_path / "c.json", tmp_path / "stop", resume=True)
    assert argv[:3] == [sys.executable, "-m", "gcl_engine.cli"] and argv[3] == "finetune"
    assert "--cancel-file" in argv and argv[-1] == "--resume" and "--background" in argv


def test_file_cancel_token(tmp_path):
    token = FileCancelToken(str(tmp_path / "stop"))
    assert not token.cancelled
    (tmp_path / "stop").touch()
    assert token.cancelled


def test_configs_round_trip_and_refuse_unknown_fields():
    cfg = api.PretrainConfig(folder="/data", out="/run", meta_labels=("subject",),
                             preprocess=api.PreprocessConfig(size=64))
    assert api.from_json(api.PretrainConfig, api.to_json(cfg)) == cfg
    try:
        api.from_dict(api.FinetuneConfig, {"stepz": 3})
    except api.ConfigError as exc:
        assert "stepz" in str(exc)
    else:
        raise AssertionError("unknown field accepted")
