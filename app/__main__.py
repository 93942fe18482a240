"""``python -m gcl_app`` and the entry script of the PyInstaller bundle: the standalone GCL Studio.

``freeze_support`` must run before anything else in a frozen program: a multiprocessing child (torch
data loading may start one) re-enters this script and must be served, not open a second window.
"""

import multiprocessing
import sys

from gcl_app.standalone.main import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
