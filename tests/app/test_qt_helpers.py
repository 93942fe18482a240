"""The UI-thread watch that the responsiveness tests rely on: it must see long work on the UI thread, and
only there."""

from __future__ import annotations

import threading

import numpy as np

from gcl_engine import api
from tests.app.qt_helpers import UiThreadWatch
from tests.app.synthetic import synthetic_ct, write_scan


def test_the_watch_names_a_volume_read_on_the_ui_thread(tmp_path):
    path = write_scan(tmp_path / "ct.nii.gz", synthetic_ct(0))
    with UiThreadWatch() as watch:
        volume = api.load_volume(path)
        _ = api.Geometry.from_dict(api.to_dict(volume.geometry))  # a data class, not long work
    assert volume.array.shape == (12, 40, 44)
    assert watch.entries, "a file read on the UI thread went unseen"
    assert all("test_qt_helpers.py" in entry.split(" called from ")[1] for entry in watch.entries)
    assert any("loading.py" in entry for entry in watch.entries)
    assert not any("volume.py:from_dict" in entry for entry in watch.entries)
    assert "loading.py" in watch.report()


def test_work_in_another_thread_is_not_the_ui_threads(tmp_path):
    path = write_scan(tmp_path / "ct.nii.gz", synthetic_ct(1))
    read = []
    with UiThreadWatch() as watch:
        worker = threading.Thread(target=lambda: read.append(api.load_volume(path)))
        worker.start()
        worker.join()
        _ = np.zeros((64, 64)).sum()  # the UI thread's own light work
    assert read and read[0].array.shape == (12, 40, 44)
    assert watch.entries == []


def test_the_watch_restores_the_previous_profiler():
    import sys

    before = sys.getprofile()
    with UiThreadWatch():
        pass
    assert sys.getprofile() is before
