"""Nothing leaks: a full run on DICOM data with known identifiers leaves them in no output; no network call."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from gcl_engine import api
from tests.reliability.dicom_factory import SECRETS, write_series

TINY = ["--size", "32", "--base-channels", "4", "--device", "cpu", "--threads", "1"]


def _run(args: list[str], cwd: Path, verbose: bool = True) -> str:
    """The CLI with its log folder inside ``cwd``, so that the leak search reads the log files too."""
    env = {k: v for k, v in os.environ.items() if k != "GCL_STUDIO_LOG_FILE"}
    env["GCL_STUDIO_LOG_DIR"] = str(cwd / "logs")
    out = subprocess.run([sys.executable, "-m", "gcl_engine.cli", *(["--verbose"] if verbose else []), *args],
                         capture_output=True, text=True, cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def _leaks(root: Path, texts: list[str]) -> list[str]:
    found = []
    for path in [p for p in root.rglob("*") if p.is_file() and "scans" not in p.parts]:
        blob = path.read_bytes()
        found += [f"{path}: {s}" for s in SECRETS if s.encode() in blob or s in path.name]
    for i, text in enumerate(texts):
        found += [f"output {i}: {s}" for s in SECRETS if s in text]
    return found


def test_full_run_on_identified_dicom_leaks_no_identifier(tmp_path):
    scans = tmp_path / "scans"
    write_series(scans / "series_a", seed=0, series_uid="1.2.826.0.1.99.1")
    write_series(scans / "series_b", seed=1, series_uid="1.2.826.0.1.99.2",
                 patient={"0010|0010": "Roebuck^Richardine", "0010|0020": "PID-08153342-ABC", "0010|0030": "19650505"})
    work = tmp_path / "work"
    work.mkdir()
    texts = [_run(["scan", str(scans), "--json", "--cache", str(work / "cache")], work, verbose=False)]
    scan = json.loads(texts[0])
    assert len(scan["volumes"]) == 2 and scan["meta_labels"]["subject"]["n_values"] == 2
    texts.append(_run(["pretrain", str(scans), "--out", str(work / "run"), "--steps", "2", "--volumes-per-batch", "2",
                       "--events", "json", *TINY], work))
    image = api.load_volume(scans / "series_a")
    labels = (image.array > 60).astype(np.uint8)
    lab_path = api.export_nifti(labels, image, work / "labels.nii.gz", label_names=["background", "organ"])
    texts.append(_run(["finetune", "--pretrained", str(work / "run" / "last.pt"), "--image", str(scans / "series_a"),
                       "--labels", str(lab_path), "--out", str(work / "model.pt"), "--steps", "2", *TINY], work))
    texts.append(_run(["predict", "--model", str(work / "model.pt"), "--image", str(scans / "series_b"), "--out",
                       str(work / "pred.nii.gz")], work))
    texts.append(_run(["export-onnx", "--model", str(work / "model.pt"), "--out", str(work / "model.onnx")], work))
    log = (work / "logs" / "gcl-studio.log").read_text(encoding="utf-8")  # --verbose: debug detail too
    assert sum(" AUDIT " in line for line in log.splitlines()) == 2  # the mask and the ONNX model
    assert _leaks(work, texts) == []
    assert "PID-47110815-XYZ" not in image.meta.subject_hash and len(image.meta.subject_hash) == 12


def test_subject_hash_is_salted_per_machine(tmp_path, monkeypatch):
    from gcl_engine.io.privacy import hash_identifier

    assert hash_identifier("PID-47110815-XYZ", salt=b"a" * 32) != hash_identifier("PID-47110815-XYZ", salt=b"b" * 32)
    import hashlib

    assert hash_identifier("PID-47110815-XYZ") != hashlib.sha256(b"PID-47110815-XYZ").hexdigest()[:12]  # not unsalted


def test_pipeline_makes_no_network_call(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network call attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    scans = write_series(tmp_path / "scans" / "s", n=8)
    write_series(tmp_path / "scans" / "t", n=8, seed=3, series_uid="1.2.826.0.1.99.7",
                 patient={"0010|0020": "OTHER"})
    run = api.pretrain(api.PretrainConfig(folder=str(tmp_path / "scans"), out=str(tmp_path / "run"), steps=2,
                                          volumes_per_batch=2, device="cpu", threads=1,
                                          preprocess=api.PreprocessConfig(size=32),
                                          model=api.ModelConfig(base_channels=4, levels=3)))
    image = api.load_volume(scans)
    lab = api.export_nifti((image.array > 60).astype(np.uint8), image, tmp_path / "l.nii.gz")
    model = api.finetune(api.FinetuneConfig(image=str(scans), labels=str(lab), out=str(tmp_path / "m.pt"),
                                            pretrained=run.checkpoint, steps=2, device="cpu", threads=1,
                                            preprocess=api.PreprocessConfig(size=32),
                                            model=api.ModelConfig(base_channels=4, levels=3)))
    onnx = api.export_onnx(model.model_path, tmp_path / "m.onnx")
    pred = api.Segmenter.load(onnx.path).predict(image)
    api.export_nifti(pred.labels, image, tmp_path / "p.nii.gz")


def test_identifiers_are_not_in_volume_metadata(tmp_path):
    """Name, ID and birth date are read from the header, yet no field of the Volume carries them."""
    folder = write_series(tmp_path / "s", n=4)
    meta = api.load_volume(folder).meta
    blob = json.dumps(meta.__dict__, default=str)
    assert [s for s in SECRETS if s in blob] == []
