"""Every test process and every child it starts logs into a throw-away folder, never the user's log folder."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config):
    if "GCL_STUDIO_LOG_DIR" not in os.environ:
        os.environ["GCL_STUDIO_LOG_DIR"] = tempfile.mkdtemp(prefix="gcl-studio-test-logs-")
