"""What the app does differently when it runs as a PyInstaller bundle, and the child-job dispatch.

In a bundle ``sys.executable`` is the app itself, not a Python interpreter, so the training child that
``api.job_command`` starts (``<executable> -m gcl_engine.cli pretrain ...``) comes back into this very
entry point. :func:`child_module` recognises that argv and :func:`run_child` runs the module exactly as
``python -m`` would (``runpy``), before any Qt or napari import: a child must start fast and must not
open a window. Only the engine's CLI is accepted, so the bundle is not a general Python launcher.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence

CHILD_MODULES = ("gcl_engine.cli",)


def is_frozen() -> bool:
    """True inside a PyInstaller bundle (``sys.frozen`` is set by its bootloader)."""
    return bool(getattr(sys, "frozen", False))


def child_module(argv: Sequence[str]) -> str | None:
    """The module of a ``-m <module> ...`` child invocation (argv without the program name), else None."""
    if len(argv) >= 2 and argv[0] == "-m" and argv[1] in CHILD_MODULES:
        return argv[1]
    return None


def run_child(module: str, args: Sequence[str]) -> int:
    """Run ``module`` as ``__main__`` with ``args`` as its command line; returns its exit status.

    The engine's CLI ends with ``sys.exit(main())``; the SystemExit is turned into a return value so the
    caller decides how the process ends (and tests can call this in-process).
    """
    saved = sys.argv
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv = saved
    return 0
