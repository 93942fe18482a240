"""The log: a file in the user's log folder (or --log-file), --verbose on stderr, one audit line per export,
crashes kept by faulthandler, and a log folder that cannot be written never stops the work."""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from gcl_engine import api
from gcl_engine.logs import CRASH_FILE_NAME, LOG_FILE_NAME, MAX_BYTES, configure_logging
from tests.engine.synthetic import make_folder

TINY = ["--size", "32", "--base-channels", "4", "--device", "cpu", "--threads", "1"]


def _gcl(args: list[str], log_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GCL_STUDIO_LOG_FILE"}
    env["GCL_STUDIO_LOG_DIR"] = str(log_dir)
    done = subprocess.run([sys.executable, "-m", "gcl_engine.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _audits(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line.split(" AUDIT ", 1)[1]) for line in lines if " AUDIT " in line]


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    configure_logging()  # back to the session's log folder for the tests that follow


def test_a_cli_session_logs_to_the_user_folder_with_one_audit_line_per_export(tmp_path):
    scans, images, labels = make_folder(tmp_path / "data", n=2)
    logs, model = tmp_path / "logs", tmp_path / "model.pt"
    _gcl(["finetune", "--image", str(images[0]), "--labels", str(labels[0]), "--out", str(model), "--steps", "2",
          *TINY], logs)
    _gcl(["predict", "--model", str(model), "--image", str(scans), "--out", str(tmp_path / "masks")], logs)
    _gcl(["export-onnx", "--model", str(model), "--out", str(tmp_path / "m.onnx")], logs)
    log = logs / LOG_FILE_NAME
    text = log.read_text(encoding="utf-8")
    assert "gcl finetune" in text and "gcl predict" in text and "Finished(stage='finetune'" in text
    audits = _audits(log)
    assert [a["format"] for a in audits] == ["nifti", "nifti", "onnx"]  # two masks, one model
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    for audit in audits:
        assert audit["model"] == str(model.resolve()) and audit["model_sha256"] == sha
        assert Path(audit["output"]).is_file() and audit["inputs"]
        assert datetime.fromisoformat(audit["time_utc"]).utcoffset().total_seconds() == 0
    assert {Path(a["inputs"][0]).name for a in audits[:2]} == {p.name for p in images}


def test_log_file_and_verbose_options(tmp_path):
    scans, _, _ = make_folder(tmp_path / "data", n=1, with_labels=False)
    chosen = tmp_path / "elsewhere" / "my.log"
    done = _gcl(["scan", str(scans), "--verbose", "--log-file", str(chosen)], tmp_path / "logs")
    assert "scanned" in chosen.read_text(encoding="utf-8") and not (tmp_path / "logs" / LOG_FILE_NAME).exists()
    assert "INFO gcl_engine.data.scan: scanned" in done.stderr  # --verbose also prints the log
    quiet = _gcl(["--log-file", str(chosen), "scan", str(scans)], tmp_path / "logs")  # before the command too
    assert "INFO" not in quiet.stderr and chosen.read_text(encoding="utf-8").count("scanned") == 2


def test_the_log_rotates_and_an_unwritable_folder_is_reported_not_fatal(tmp_path, capsys):
    path = configure_logging(log_file=tmp_path / "a" / "gcl.log")
    [handler] = [h for h in logging.getLogger("gcl_engine").handlers if isinstance(h, logging.FileHandler)]
    assert isinstance(handler, logging.handlers.RotatingFileHandler) and handler.maxBytes == MAX_BYTES
    assert path == tmp_path / "a" / "gcl.log"
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert configure_logging(log_file=blocker / "gcl.log") is None
    assert "cannot write the log file" in capsys.readouterr().err
    logging.getLogger("gcl_engine.test").info("still fine")  # no handler error, no exception


def test_a_crash_leaves_its_traceback_in_crash_log(tmp_path):
    code = ("import faulthandler; from gcl_engine.logs import configure_logging; "
            f"configure_logging(log_file={str(tmp_path / LOG_FILE_NAME)!r}, faults='file'); faulthandler._sigsegv()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"})
    assert done.returncode != 0
    crash = (tmp_path / CRASH_FILE_NAME).read_text(encoding="utf-8")
    assert "Fatal Python error" in crash and "Segmentation fault" in crash


def test_library_code_never_prints():
    """Library modules log; only the command-line front ends (cli*, demo) write to stdout/stderr."""
    import ast

    root = Path(api.__file__).parent
    front_ends = {"cli.py", "cli_output.py", "cli_painting.py", "cli_insight.py", "demo.py"}
    printing = []
    for path in root.rglob("*.py"):
        if path.name in front_ends:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                printing.append(f"{path.relative_to(root)}:{node.lineno}")
    assert printing == []
