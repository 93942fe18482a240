"""``gcl-studio`` and ``python -m gcl_app``: start the app, run the self-test, or serve a training child.

The child dispatch comes first and imports nothing heavy: in a bundle every training job starts this
same executable (see :mod:`gcl_app.standalone.frozen`). Qt, napari and the window are imported only
when a window is really wanted, which also keeps ``--help`` instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gcl_app.standalone.frozen import child_module, run_child


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gcl-studio", description="GCL Studio: few-shot medical image "
                                     "segmentation (napari viewer, GCL pre-training, interactive fine-tuning).")
    parser.add_argument("project", nargs="?", help="a project folder to open")
    parser.add_argument("--sample", action="store_true", help="open the sample project")
    parser.add_argument("--no-restore", action="store_true", help="do not offer to reopen a project after a crash")
    parser.add_argument("--self-test", action="store_true",
                        help="open the sample, fine-tune two steps in a child process, export a mask, check it, exit")
    parser.add_argument("--self-test-steps", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug detail (and print the log on stderr)")
    parser.add_argument("--log-file", help="log here instead of the user log folder's gcl-studio.log")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="with --self-test: save the start page and the main window as PNG files here")
    return parser


def create_app():  # -> QApplication (Qt types are imported lazily, see the module docstring)
    """The QApplication, through napari so its theme icons, thread workers and notifications are set up."""
    from gcl_app.standalone.assets import icon_path
    from napari.qt import get_qapp
    from qtpy.QtWidgets import QApplication

    from gcl_engine import api

    if QApplication.instance() is not None:
        return get_qapp()
    icon = icon_path()
    return get_qapp(app_name="GCL Studio", app_version=api.__version__, icon=str(icon) if icon else "",
                    org_name="gcl-studio", org_domain="gcl-studio.app", app_id="gcl-studio.app",
                    ipy_interactive=False)


def self_test_config() -> Path:
    """The self-test leaves the user's recent projects and crash locks alone: a throw-away config folder,
    unless ``$GCL_STUDIO_CONFIG_DIR`` names one (the smoke test and the tests check what is left there)."""
    from gcl_app.standalone.sessions import CONFIG_ENV, config_dir

    if os.environ.get(CONFIG_ENV):
        return config_dir()
    return Path(tempfile.mkdtemp(prefix="gcl-studio-selftest-config-"))


def start_logging(args: argparse.Namespace) -> None:
    """The window's log (the training children log to the same file; see ``gcl_engine.logs``)."""
    import logging

    from gcl_engine import api

    path = api.configure_logging(verbose=args.verbose, log_file=args.log_file, console=args.verbose, faults="file")
    logging.getLogger("gcl_app").info("gcl-studio %s started (pid %d), log %s", api.__version__, os.getpid(), path)


def run_gui(args: argparse.Namespace) -> int:
    start_logging(args)
    app = create_app()
    from gcl_app.standalone.window import MainWindow
    from qtpy.QtCore import QTimer

    if args.self_test:
        from gcl_app.standalone.selftest import run_self_test

        return run_self_test(MainWindow(config_folder=self_test_config()), args.self_test_steps, args.screenshots)
    window = MainWindow()
    window.show()
    if args.project:
        QTimer.singleShot(0, lambda: window.open_project(args.project))
    elif args.sample:
        QTimer.singleShot(0, window.open_sample)
    elif not args.no_restore:
        QTimer.singleShot(0, window.offer_restore)
    return int(app.exec())


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    module = child_module(args)
    if module is not None:
        return run_child(module, args[2:])
    return run_gui(build_parser().parse_args(args))
