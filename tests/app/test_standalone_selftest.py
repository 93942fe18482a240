"""``gcl-studio --self-test`` end to end, and the training-child dispatch a frozen bundle relies on.

The self-test runs as its own process (as the smoke test runs the bundle), on the display pytest-xvfb
started; it fine-tunes for two steps in a grandchild process, so it takes some seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys

from gcl_app.standalone.frozen import child_module, run_child
from gcl_app.standalone.main import build_parser
from gcl_app.standalone.sessions import CONFIG_ENV

from gcl_engine import api
from tests.app.synthetic import synthetic_ct, write_scan


def test_job_commands_are_recognised_as_child_invocations(tmp_path):
    argv = api.job_command("finetune", tmp_path / "cfg.json", tmp_path / "stop")
    assert argv[0] == sys.executable  # in a bundle: the app itself, hence the dispatch
    assert child_module(argv[1:]) == "gcl_engine.cli"
    assert child_module(["-m", "os"]) is None  # not a general Python launcher
    assert child_module(["--self-test"]) is None and child_module([]) is None


def test_a_child_invocation_runs_the_engine_cli_in_process(tmp_path, capsys):
    write_scan(tmp_path / "one_ct.nii.gz", synthetic_ct(0, shape=(4, 16, 16)))
    assert run_child("gcl_engine.cli", ["scan", str(tmp_path)]) == 0
    assert "one_ct" in capsys.readouterr().out
    assert run_child("gcl_engine.cli", ["no-such-command"]) == 2  # argparse's exit status comes back


def test_python_m_gcl_app_serves_child_jobs_like_the_bundle(tmp_path):
    write_scan(tmp_path / "one_ct.nii.gz", synthetic_ct(0, shape=(4, 16, 16)))
    done = subprocess.run([sys.executable, "-m", "gcl_app", "-m", "gcl_engine.cli", "scan", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "one_ct" in done.stdout


def test_command_line_options():
    args = build_parser().parse_args(["--self-test", "--screenshots", "shots"])
    assert args.self_test and str(args.screenshots) == "shots" and args.self_test_steps == 2
    assert build_parser().parse_args(["some/project"]).project == "some/project"


def test_self_test_passes(tmp_path):
    env = {**os.environ, CONFIG_ENV: str(tmp_path / "config"), "GCL_STUDIO_LOG_DIR": str(tmp_path / "logs")}
    assert env.get("DISPLAY"), "pytest-xvfb provides the display the self-test needs"
    done = subprocess.run([sys.executable, "-m", "gcl_app", "--self-test"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = [line for line in done.stdout.splitlines() if line.startswith("gcl-studio self-test")]
    assert len(summary) == 1 and "passed" in summary[0] and "read back on the source grid" in summary[0]
    sessions = tmp_path / "config" / "sessions"
    assert sessions.is_dir() and not any(sessions.iterdir())  # a clean exit releases its crash lock
    # the GUI session's log: the window's lines, the training child's (same file), one audit line for the export
    log = (tmp_path / "logs" / "gcl-studio.log").read_text(encoding="utf-8")
    audits = [line for line in log.splitlines() if " AUDIT " in line]
    assert len(audits) == 1 and '"format": "nifti"' in audits[0], log[-3000:]
    assert '"model_sha256": "' in audits[0] and "example_ct_sm" in audits[0]  # which model, which scan
    assert "gcl-studio 0" in log and "gcl finetune" in log and "the finetune job completed" in log, log[-3000:]
