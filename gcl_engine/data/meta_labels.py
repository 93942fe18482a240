"""Meta labels: free attributes of every slice (subject, position, phase, series, CSV columns).

A meta label maps each slice to an integer; two slices are positives under it when the integers match.
A label is *usable* only when it takes at least two known values over the data.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gcl_engine.errors import InputError

UNKNOWN_BASE = 1_000_000  # unknown values get UNKNOWN_BASE + volume index: positive only within the volume


@dataclass(frozen=True)
class SliceRecord:
    """What the table needs to know about one volume."""

    volume_id: str
    source_name: str  # file or folder name, the CSV sidecar's key
    n_slices: int
    subject: str  # salted hash
    series: str  # modality + series description
    time_index: int | None = None
    slice_phase: tuple[int, ...] | None = None


@dataclass
class MetaLabelSummary:
    name: str
    n_values: int
    usable: bool
    counts: dict[str, int] = field(default_factory=dict)
    known_slices: int = 0  # slices with a known value: only these enter this label's loss
    total_slices: int = 0


@dataclass
class MetaLabelTable:
    """Per-slice arrays: ``volume[i]``, ``index[i]`` (slice within volume) and ``labels[name][i]``."""

    volume: np.ndarray
    index: np.ndarray
    partition: np.ndarray  # position partition of the slice, used by the sampler
    labels: dict[str, np.ndarray]
    n_partitions: int

    def summaries(self) -> dict[str, MetaLabelSummary]:
        out = {}
        for name, values in self.labels.items():
            known = values[values < UNKNOWN_BASE]
            counts = Counter(int(v) for v in known)
            by_value = {str(k): c for k, c in sorted(counts.items())}
            out[name] = MetaLabelSummary(name, len(counts), len(counts) >= 2, by_value, int(known.size),
                                         int(values.size))
        return out

    def usable(self, wanted: tuple[str, ...] | None = None) -> list[str]:
        summ = self.summaries()
        names = list(self.labels) if wanted is None else [n for n in wanted if n in self.labels]
        return [n for n in names if summ[n].usable]


def _codes(values: list[str]) -> dict[str, int]:
    return {v: i for i, v in enumerate(sorted(set(values)))}


def read_sidecar_csv(path: str | Path) -> dict[str, dict[str, str]]:
    """CSV with a ``file`` column (file or folder name) and one column per user meta label."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(p, f"cannot read the meta-label CSV ({exc})") from exc
    if not rows or "file" not in rows[0]:
        raise InputError(p, "the meta-label CSV needs a header with a 'file' column")
    return {row["file"]: {k: v for k, v in row.items() if k != "file" and v not in (None, "")} for row in rows}


def build_table(
    records: list[SliceRecord],
    n_partitions: int = 4,
    position_within: str = "series",
    sidecar: dict[str, dict[str, str]] | None = None,
) -> MetaLabelTable:
    """One row per slice of every volume, in volume order."""
    subj = _codes([r.subject for r in records])
    series = _codes([r.series for r in records])
    vol, idx, part, cols = [], [], [], {"subject": [], "position": [], "phase": [], "series": []}
    extra_names = sorted({k for row in (sidecar or {}).values() for k in row})
    extra_codes = {n: _codes([row[n] for row in (sidecar or {}).values() if n in row]) for n in extra_names}
    extra_cols: dict[str, list[int]] = {n: [] for n in extra_names}
    for v, rec in enumerate(records):
        n = max(rec.n_slices, 1)
        p = np.minimum((np.arange(rec.n_slices) * n_partitions) // n, n_partitions - 1)
        vol.append(np.full(rec.n_slices, v))
        idx.append(np.arange(rec.n_slices))
        part.append(p)
        cols["subject"].append(np.full(rec.n_slices, subj[rec.subject]))
        pos = p + (series[rec.series] * n_partitions if position_within == "series" else 0)
        cols["position"].append(pos)
        cols["phase"].append(_phase_column(rec, v))
        cols["series"].append(np.full(rec.n_slices, series[rec.series]))
        row = (sidecar or {}).get(rec.source_name, {})
        for name in extra_names:
            code = extra_codes[name].get(row[name]) if name in row else None
            extra_cols[name].append(np.full(rec.n_slices, UNKNOWN_BASE + v if code is None else code))
    labels = {k: np.concatenate(c).astype(np.int64) for k, c in cols.items()} if records else {}
    for name in extra_names:
        labels[f"csv:{name}"] = np.concatenate(extra_cols[name]).astype(np.int64)
    cat = (lambda xs: np.concatenate(xs).astype(np.int64)) if records else (lambda xs: np.zeros(0, np.int64))
    return MetaLabelTable(cat(vol), cat(idx), cat(part), labels, n_partitions)


def _phase_column(rec: SliceRecord, volume_index: int) -> np.ndarray:
    if rec.slice_phase is not None and len(rec.slice_phase) == rec.n_slices:
        return np.asarray(rec.slice_phase, dtype=np.int64)
    if rec.time_index is not None:
        return np.full(rec.n_slices, rec.time_index)
    return np.full(rec.n_slices, UNKNOWN_BASE + volume_index)
