"""The engine's thread rule (runtime.default_threads) and where it is applied."""

from __future__ import annotations

import os

import pytest
import torch

from gcl_engine import api, cli
from gcl_engine.runtime import configure_cpu_threads, default_threads


@pytest.mark.parametrize("cores,threads", [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (16, 8)])
def test_half_the_cores_at_least_one(cores, threads):
    assert default_threads(cores) == threads


def test_the_machine_core_count_is_used_when_none_is_given(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 12)
    assert default_threads() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert default_threads() == 1


def test_torch_jobs_get_the_rule_unless_asked_otherwise(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    try:
        assert configure_cpu_threads(None) == 3 and torch.get_num_threads() == 3
        assert configure_cpu_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_gcl_predict_passes_the_rule_to_the_predictor(monkeypatch, tmp_path):
    seen = {}

    def fake_predict_folder(model, image, out, on_event=None, cancel=None, config=None):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(api, "predict_folder", fake_predict_folder)
    monkeypatch.setattr(api, "default_threads", lambda: 5)
    with pytest.raises(SystemExit):
        cli.main(["--log-file", str(tmp_path / "log.txt"), "predict", "--model", str(tmp_path / "m.onnx"),
                  "--image", str(tmp_path), "--out", str(tmp_path)])
    assert seen["config"].threads == 5
    with pytest.raises(SystemExit):
        cli.main(["--log-file", str(tmp_path / "log.txt"), "predict", "--model", "m.onnx", "--image", str(tmp_path),
                  "--out", str(tmp_path), "--threads", "3"])
    assert seen["config"].threads == 3
