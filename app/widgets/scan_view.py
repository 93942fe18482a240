"""What a folder scan found: the volumes, the files skipped (and why), and the meta labels with switches.

Users need to see why a file was left out before they spend an hour pre-training without it, and
which meta labels can contrast anything (a label with one value cannot) before choosing them.

The volume table of a big folder is filled a few hundred rows per pass of the event loop: measured,
2,000 volumes (10,000 cells) in one go froze the window for ~140 ms on two loaded cores. Its columns are
sized once, after the last row, from a sample of rows: sizing them to their contents on every new cell
(ResizeToContents) froze a shown window for 1.8 s on 300 volumes (``benchmarks/ui_responsiveness.py``).
"""

from __future__ import annotations

from pathlib import Path

from gcl_app.widgets.meta_words import meta_meaning, meta_name
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from gcl_engine import api

VOLUME_COLUMNS = ("Volume", "Modality", "Series", "Shape", "Status")
META_COLUMNS = ("Use", "Contrast slices by", "Groups", "Known on", "Slices per group")
SHAPE_COLUMN = VOLUME_COLUMNS.index("Shape")
VOLUME_NAME_MAX_PX = 170  # longer volume names are elided (the full name is the tooltip): Shape stays readable
VISIBLE_ROWS = 8  # volume rows visible without scrolling the table
ROWS_PER_PASS = 150  # volume rows added per event-loop pass (~10 ms of UI thread on a loaded core)
SIZING_SAMPLE_ROWS = 200  # rows looked at to size the volume table's columns


def _key_order(key: str) -> tuple[int, float, str]:
    """Numbers in numeric order (0, 1, 2 … 10, not 0, 1, 10, 11), then text."""
    try:
        return (0, float(key), "")
    except ValueError:
        return (1, 0.0, key)


def counts_text(counts: dict[str, int], limit: int = 4) -> str:
    """Slices per value, values in their natural order."""
    items = sorted(counts.items(), key=lambda kv: _key_order(kv[0]))
    text = ", ".join(f"{k}: {v}" for k, v in items[:limit])
    return text + (f", … (+{len(items) - limit})" if len(items) > limit else "")


def values_text(key: str, n_values: int) -> str:
    """ "20 groups" rather than "position: 20 values"."""
    unit = {"subject": "patient", "position": "height band", "phase": "phase", "series": "series"}.get(key, "group")
    plural = unit if n_values == 1 or unit == "series" else unit + "s"
    return f"{n_values} {plural}"


def duplicates(result: api.ScanResult) -> dict[str, str]:
    """Meta labels grouping the slices exactly like an earlier one here (same values, same slice counts):
    label -> the one it repeats. Shown once: a second row of the same grouping only read as a second idea."""
    seen: dict[tuple, str] = {}
    repeated: dict[str, str] = {}
    for name, summary in result.meta_labels.items():
        signature = (summary.n_values, summary.known_slices, tuple(sorted(summary.counts.values())))
        if signature in seen and summary.n_values > 1:
            repeated[name] = seen[signature]
        else:
            seen.setdefault(signature, name)
    return repeated


def _item(text: str, tooltip: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    if tooltip:
        item.setToolTip(tooltip)
    return item


def _table(columns: tuple[str, ...], parent: QWidget, fit_each_cell: bool = True) -> QTableWidget:
    """A read-only table; ``fit_each_cell=False``: columns are sized by ``resizeColumnsToContents`` calls only,
    from a sample of rows (see the module doc)."""
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().setVisible(False)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    header = table.horizontalHeader()
    if fit_each_cell:
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    else:
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setResizeContentsPrecision(SIZING_SAMPLE_ROWS)
    header.setStretchLastSection(True)
    return table


class ScanView(QWidget):
    """Two tables fed by one :class:`api.ScanResult`; ``rows_filled`` once the last volume row is in."""

    rows_filled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[tuple[str, ...], str, bool]] = []
        self._next_row = 0
        self._fill_timer = QTimer(self)
        self._fill_timer.setInterval(0)
        self._fill_timer.timeout.connect(self._fill_some)
        self.summary = QLabel("No folder scanned yet.", self)
        self.volumes = _table(VOLUME_COLUMNS, self, fit_each_cell=False)  # sized once filled
        rows_px = self.volumes.verticalHeader().defaultSectionSize() * VISIBLE_ROWS
        self.volumes.setMinimumHeight(rows_px + self.volumes.horizontalHeader().sizeHint().height() + 4)
        self.volumes.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.meta = _table(META_COLUMNS, self)
        self.meta.setMinimumHeight(150)
        self.duplicate_note = QLabel("", self)
        self.duplicate_note.setWordWrap(True)
        self.meta.setToolTip("Meta labels pre-training contrasts; a label with a single value cannot be used.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.volumes, 3)
        layout.addWidget(QLabel("Meta labels", self))
        layout.addWidget(self.meta, 2)
        layout.addWidget(self.duplicate_note)

    def show_result(self, result: api.ScanResult) -> None:
        self.summary.setText(f"{len(result.volumes)} volume(s), {len(result.skipped)} file(s) skipped "
                             f"({result.seconds:.1f} s)")
        self._fill_volumes(result)
        self._fill_meta(result)

    @property
    def filled(self) -> bool:
        """Every row of the last result is in the volume table."""
        return self._next_row >= len(self._rows)

    def _fill_volumes(self, result: api.ScanResult) -> None:
        """Rows as plain text now; the table items a pass at a time (the first pass right away)."""
        rows = [((v.volume_id, v.modality, v.series or "—", " × ".join(str(s) for s in v.shape),
                  "ok, see note" if v.notes else "ok"), "\n".join([v.source, *v.notes]), False)
                for v in result.volumes]
        rows += [((Path(s.path).name, "", "", "", f"skipped: {s.reason}"), f"{s.path}\n{s.reason}", True)
                 for s in result.skipped]
        self._fill_timer.stop()
        self.volumes.clearContents()
        self.volumes.setRowCount(len(rows))
        self._rows, self._next_row = rows, 0
        self._fill_some()

    def _fill_some(self) -> None:
        end = min(self._next_row + ROWS_PER_PASS, len(self._rows))
        self.volumes.setUpdatesEnabled(False)
        for row in range(self._next_row, end):
            cells, tooltip, skipped = self._rows[row]
            for col, text in enumerate(cells):
                item = _item(text, tooltip)
                if skipped:
                    item.setForeground(Qt.GlobalColor.gray)
                self.volumes.setItem(row, col, item)
        self.volumes.setUpdatesEnabled(True)
        self._next_row = end
        if end < len(self._rows):
            self._fill_timer.start()
        else:
            self._fill_timer.stop()
            self.volumes.resizeColumnsToContents()
            if self.volumes.columnWidth(0) > VOLUME_NAME_MAX_PX:
                self.volumes.setColumnWidth(0, VOLUME_NAME_MAX_PX)
            self.rows_filled.emit()

    def _fill_meta(self, result: api.ScanResult) -> None:
        repeated = duplicates(result)
        self.meta.setRowCount(len(result.meta_labels))
        for row, (name, summary) in enumerate(result.meta_labels.items()):
            self.meta.setRowHidden(row, name in repeated)  # its switch stays, as the config has it
            use = QTableWidgetItem()
            flags = Qt.ItemFlag.ItemIsUserCheckable | (Qt.ItemFlag.ItemIsEnabled if summary.usable else
                                                       Qt.ItemFlag.NoItemFlags)
            use.setFlags(flags)
            use.setCheckState(Qt.CheckState.Checked if summary.usable else Qt.CheckState.Unchecked)
            use.setData(Qt.ItemDataRole.UserRole, name)
            if not summary.usable:
                use.setToolTip("only one value in this folder: nothing to contrast")
            self.meta.setItem(row, 0, use)
            self.meta.setItem(row, 1, _item(meta_name(name), f"{meta_meaning(name)} (meta label '{name}')"))
            self.meta.setItem(row, 2, _item(values_text(name, summary.n_values)))
            self.meta.setItem(row, 3, _item(f"{summary.known_slices} / {summary.total_slices} slices",
                                            "slices whose value is unknown stay out of this label's loss"))
            self.meta.setItem(row, 4, _item(counts_text(summary.counts), counts_text(summary.counts, 50)))
        self.duplicate_note.setText(" ".join(
            f"{meta_name(name)} groups the slices exactly as {meta_name(other)} here: shown once."
            for name, other in repeated.items()))

    def selected_meta_labels(self) -> tuple[str, ...]:
        names = []
        for row in range(self.meta.rowCount()):
            item = self.meta.item(row, 0)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                names.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return tuple(names)

    def set_meta_label(self, name: str, on: bool) -> None:
        for row in range(self.meta.rowCount()):
            item = self.meta.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
