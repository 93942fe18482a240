"""The Qt binding must not corrupt reference counts: every panel emits thousands of signals.

PySide6-Essentials 6.12.0 on Python 3.11 drops a reference to ``True`` on every ``Signal.emit()``
(emit returns it without a new reference); after enough emits the interpreter aborts with
"Fatal Python error: bool_dealloc" / "none_dealloc", often at exit, after every test passed.
From Python 3.12 on, True is immortal and the bug is harmless. This test names the problem directly.
"""

from __future__ import annotations

import sys

import qtpy
from qtpy.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(object)


def test_signal_emit_keeps_reference_counts(qapp):
    emitter = _Emitter()
    emitter.fired.connect(lambda _value: None)
    emitter.fired.emit(None)  # warm up any one-off caches
    before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(200):
        emitter.fired.emit(None)
    after = sys.getrefcount(True), sys.getrefcount(None)
    assert after == before, (f"{qtpy.API_NAME} {qtpy.QT_VERSION} on Python {sys.version.split()[0]} loses references "
                             f"on Signal.emit (True/None refcount {before} -> {after}): pin another binding version "
                             "(PySide6-Essentials 6.11.3 is clean)")
