"""The window under load (``make soak``): a 2,000-volume folder scanned through the data panel. The UI thread
must read none of the files itself (asserted); the row also reports the event loop's longest gap (measured,
not asserted: load stretches it) and the window process's peak memory during the scan."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gcl_app.project import PROJECT_ENV

from benchmarks.stall_monitor import StallMonitor
from tests.app.qt_helpers import UiThreadWatch
from tests.app.synthetic import many_volumes

pytestmark = pytest.mark.soak
VOLUMES = 2000


def rss_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS now, VmHWM its peak), in MB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def reset_peak_rss() -> None:
    """VmHWM restarts from the current RSS (Linux >= 4.0): the peak then belongs to what follows."""
    Path("/proc/self/clear_refs").write_text("5")


def test_two_thousand_volume_scan_in_the_data_panel(make_napari_viewer, qtbot, tmp_path, monkeypatch, record):
    monkeypatch.setenv(PROJECT_ENV, str(tmp_path / "project"))
    folder = many_volumes(tmp_path / "many", VOLUMES, shape=(6, 24, 24))
    _dock, panel = make_napari_viewer().window.add_plugin_dock_widget("gcl-studio", "Data & pre-training")
    qtbot.waitUntil(lambda: panel.devices_known, timeout=120_000)
    panel.folder.value = str(folder)
    reset_peak_rss()
    before = rss_mb("VmRSS")
    monitor = StallMonitor()
    monitor.start()
    watch = UiThreadWatch().start()
    started = time.perf_counter()
    panel.scan_button.click()
    qtbot.waitUntil(lambda: panel.scan_result is not None and panel.scan_view.filled, timeout=1_800_000)
    seconds = time.perf_counter() - started
    qtbot.wait(200)  # the table's layout pass after the last rows
    monitor.stop()
    watch.stop()
    peak = rss_mb("VmHWM")
    listed = panel.scan_view.volumes.rowCount()
    ok = len(panel.scan_result.volumes) == VOLUMES and listed == VOLUMES and not watch.entries
    record("2,000-volume scan in the data panel (GUI)", 1, int(ok), "0",
           f"UI thread read {len(watch.entries)} file(s); longest event-loop gap {monitor.max_gap_ms:.0f} ms, "
           f"99th percentile {monitor.percentile_ms(99):.0f} ms; window process RSS "
           f"{before:.0f} MB before, peak {peak:.0f} MB; {seconds:.0f} s")
    assert len(panel.scan_result.volumes) == VOLUMES and listed == VOLUMES
    assert panel.scan_view.volumes.item(VOLUMES - 1, 0).text() == f"sub-{VOLUMES - 1:04d}_T1w"
    assert not watch.entries, watch.report()
    assert peak - before < 512, f"the scan raised the window's memory by {peak - before:.0f} MB"
    panel.shutdown()
