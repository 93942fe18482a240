"""The soak suite prints one table of faults injected, survived and data lost (``make soak``)."""

from __future__ import annotations

import pytest

ROWS: list[dict] = []


@pytest.fixture
def record():
    def add(fault: str, injected: int, survived: int, lost: str, note: str = "") -> None:
        ROWS.append({"fault": fault, "injected": injected, "survived": survived, "lost": lost, "note": note})
    return add


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    tr = terminalreporter
    tr.write_sep("=", "fault injection")
    tr.write_line(f"| {'fault':<44} | injected | survived | data lost | note")
    tr.write_line(f"|{'-' * 46}|----------|----------|-----------|-----")
    for r in ROWS:
        tr.write_line(f"| {r['fault']:<44} | {r['injected']:>8} | {r['survived']:>8} | {r['lost']:>9} | {r['note']}")
