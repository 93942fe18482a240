"""gcl map / check-fit / report on a real (tiny) pre-training run, as a user and the GUI's child process run them."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from gcl_engine import api
from gcl_engine.cli import main
from gcl_engine.insight.run_model import RunModel
from tests.engine.synthetic import TINY_MODEL, TINY_PRE, make_folder, write


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("insight")
    scans, images, _ = make_folder(root, n=3, with_labels=False)
    cfg = api.PretrainConfig(folder=str(scans), out=str(root / "run"), steps=3, device="cpu", threads=1,
                             volumes_per_batch=2, preprocess=TINY_PRE, model=TINY_MODEL)
    api.pretrain(cfg)
    return root / "run"


def test_map_writes_a_csv_of_every_slice_and_a_png(run, tmp_path, capsys):
    assert main(["map", str(run), "--out", str(tmp_path / "m"), "--colour-by", "position", "--device", "cpu"]) == 0
    fmap = api.read_map(tmp_path / "m" / "map.csv")
    assert len(fmap) == 3 * 16 and sorted(set(fmap.volume_id)) == ["case00_ct", "case01_ct", "case02_mr"]
    assert sorted(set(fmap.slice.tolist())) == list(range(16)) and np.isfinite(fmap.xy).all()
    assert {"volume", "subject", "position", "series"} <= set(fmap.colour_choices())
    assert set(fmap.labels["position"]) == {"1/4", "2/4", "3/4", "4/4"}
    assert (tmp_path / "m" / "map.png").read_bytes()[:4] == b"\x89PNG"
    assert "48 slices" in capsys.readouterr().out
    assert (run / "insight" / "embeddings.npz").is_file() and (run / "insight" / "fit.npz").is_file()


def test_a_second_map_reuses_the_embeddings_of_the_same_checkpoint(run, tmp_path, monkeypatch):
    main(["map", str(run), "--out", str(tmp_path / "a"), "--device", "cpu", "--method", "pca"])

    def no_network(*_a, **_k):
        raise AssertionError("embedded again")

    monkeypatch.setattr(RunModel, "embed", no_network)
    assert main(["map", str(run), "--out", str(tmp_path / "b"), "--device", "cpu", "--method", "pca"]) == 0
    assert (tmp_path / "a" / "map.csv").read_text() == (tmp_path / "b" / "map.csv").read_text()


def test_max_slices_spreads_the_map_over_every_volume(run, tmp_path):
    main(["map", str(run), "--out", str(tmp_path), "--max-slices", "12", "--device", "cpu"])
    fmap = api.read_map(tmp_path / "map.csv")
    assert 9 <= len(fmap) <= 15 and len(set(fmap.volume_id)) == 3


def test_check_fit_prints_score_threshold_and_verdict_and_exits_0(run, tmp_path, capsys):
    pool_scan = sorted((run.parent / "scans").glob("*.nii.gz"))[0]
    rng = np.random.default_rng(3)
    noise = write((rng.normal(0, 1, (16, 40, 40)) * 1000).astype(np.int16), tmp_path / "noise_ct.nii.gz")
    assert main(["check-fit", "--run", str(run), "--image", str(pool_scan), "--device", "cpu"]) == 0
    line = capsys.readouterr().out
    assert re.search(r"score \d\.\d+ +threshold \d\.\d+ +verdict inside", line), line
    assert main(["check-fit", "--run", str(run), "--image", str(noise), "--json", "--device", "cpu"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["verdict"] in ("inside", "outside") and verdict["n_slices"] == 16
    inside = api.check_fit(run, pool_scan, device="cpu")
    assert verdict["score"] > inside.score  # noise lies farther from the pool than one of its own scans


def test_check_fit_of_a_run_that_is_not_there_exits_2(tmp_path, capsys):
    assert main(["check-fit", "--run", str(tmp_path), "--image", str(tmp_path / "x.nii.gz")]) == 2
    assert "not a pre-training run folder" in capsys.readouterr().err


def test_report_is_one_self_contained_page(run, tmp_path, capsys):
    assert main(["report", str(run), "--out", str(tmp_path), "--device", "cpu"]) == 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    for heading in ("Loss per meta label and branch", "Conflict matrix", "Embedding spread", "Linear probe",
                    "Map of the folder", "Does a scan fit?", "Timings", "Configuration"):
        assert heading in html
    assert "fights" in html or "no pair of meta labels fought" in html
    assert html.count("<svg") >= 3 and "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)  # nothing fetched from outside
    assert "training time" in html  # from the metrics' time stamps
    assert "image branch" in capsys.readouterr().out


def test_map_job_in_a_child_process_streams_json_events(run, tmp_path):
    cfg = api.MapConfig(run=str(run), out=str(tmp_path / "out"), device="cpu", threads=1, method="pca")
    config = tmp_path / "map-config.json"
    config.write_text(api.to_json(cfg))
    done = subprocess.run(api.job_command("map", config), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [api.event_from_json(line) for line in done.stdout.splitlines() if line.strip()]
    finished = [e for e in events if isinstance(e, api.Finished)]
    assert finished and finished[-1].stage == "map" and finished[-1].status == "completed"
    assert (tmp_path / "out" / "map.csv").is_file()


def test_a_moved_scan_folder_is_named_in_the_error(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("insight", "cache"))
    cfg = api.load_json(api.PretrainConfig, copy / "config.json")
    (copy / "config.json").write_text(api.to_json(dataclasses.replace(cfg, folder=str(tmp_path / "gone"))))
    import torch

    state = torch.load(copy / "last.pt", weights_only=True)
    state["config_json"] = (copy / "config.json").read_text()
    torch.save(state, copy / "last.pt")
    assert main(["map", str(copy), "--out", str(tmp_path / "m"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "gone" in err and "scan folder is not there any more" in err
