"""Human-readable terminal output for the CLI: a progress line and the scan table."""

from __future__ import annotations

import sys

from gcl_engine.events import Event, Finished, Log, Metric, Progress


class TerminalReporter:
    """Prints Progress as one rewritten line on a terminal (plain lines otherwise) and Logs as lines."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_plain = -1

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            self._progress(event)
        elif isinstance(event, Log):
            self._line(f"[{event.level}] {event.message}")
        elif isinstance(event, Finished):
            self._line(f"{event.stage} {event.status}")
        elif isinstance(event, Metric):
            return

    def _progress(self, e: Progress) -> None:
        if e.total <= 0:
            return
        frac = e.done / e.total
        eta = f" eta {e.eta_s:.0f}s" if e.eta_s is not None else ""
        text = f"{e.stage} [{'#' * int(frac * 30):<30}] {e.done}/{e.total} {e.message}{eta}"
        if self.tty:
            self.stream.write("\r" + text[:120].ljust(120) + ("\n" if e.done >= e.total else ""))
            self.stream.flush()
        elif int(frac * 10) != self._last_plain or e.done >= e.total:
            self._last_plain = int(frac * 10)
            self._line(text)

    def _line(self, text: str) -> None:
        self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()


def print_scan(result) -> None:
    print(f"{len(result.volumes)} volume(s) in {result.folder} ({result.seconds:.1f} s)")
    print(f"{'id':<32} {'modality':<8} {'shape':<16} {'spacing':<20} {'t':>3} subject")
    for v in result.volumes:
        spacing = "x".join(f"{s:.2f}" for s in v.spacing)
        shape = "x".join(str(s) for s in v.shape)
        print(f"{v.volume_id[:32]:<32} {v.modality:<8} {shape:<16} {spacing:<20} {v.n_time_points:>3} {v.subject_hash}")
    if result.skipped:
        print(f"\n{len(result.skipped)} file(s) skipped:")
        for s in result.skipped:
            print(f"  {s.path}: {s.reason}")
    print("\nmeta labels:")
    for name, summary in result.meta_labels.items():
        state = "usable" if summary.usable else "not usable (needs two values or more)"
        known = f"known on {summary.known_slices} of {summary.total_slices} slices"
        print(f"  {name:<10} {summary.n_values:>4} value(s)  {state}; {known}")
