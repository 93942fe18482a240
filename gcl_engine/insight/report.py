"""``gcl report``: one self-contained HTML page about a pre-training run.

Loss curves per meta label and branch, the conflict matrix with its plain-words line, the embedding
spread (a collapse shows as a spread falling to zero), the linear probe on the meta labels, the map of the
folder, the fit check's calibration, the configuration and the timings. Charts are inline SVG and the maps
inline PNG (base64), so the page opens anywhere, offline, and can be mailed as one file.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from gcl_engine import __version__
from gcl_engine.config import to_dict
from gcl_engine.events import EventSink, Log, Progress, emit
from gcl_engine.insight.config import ReportConfig
from gcl_engine.insight.conflicts import ConflictMatrix, conflict_matrices, cosine_series
from gcl_engine.insight.files import REPORT_FILE, ensure_folder
from gcl_engine.insight.fit_check import FitReference, FitSettings, fit_reference
from gcl_engine.insight.folder_map import FolderMap, build_map
from gcl_engine.insight.map_image import render_map
from gcl_engine.insight.probe import ProbeResult, probe_all
from gcl_engine.insight.svg_charts import line_chart
from gcl_engine.io.atomic import atomic_write_text
from gcl_engine.run_layout import RunLayout, read_metrics
from gcl_engine.runtime import CancelToken

MAP_COLUMNS = ("volume", "position", "subject", "series", "phase")
PAUSE_S = 600.0  # a gap this long between two logged steps is a stop and a resume, not training time


@dataclass
class ReportResult:
    path: Path
    sentences: list[str]
    seconds: float


def write_report(cfg: ReportConfig, on_event: EventSink | None = None,
                 cancel: CancelToken | None = None) -> ReportResult:
    """Gather everything about the run and write ``OUT/report.html`` atomically."""
    cfg.validate()
    t0 = time.perf_counter()
    fmap, pool, emb, model = build_map(cfg.map_config(), on_event, cancel)
    emit(on_event, Progress("report", 1, 3, "fit check and probe"))
    settings = FitSettings(max_slices=cfg.max_slices)
    ref = fit_reference(model, settings, on_event, cancel, pool, emb)
    probes = probe_all(emb.z, fmap.labels, pool.volume, cfg.seed)
    rows = read_metrics(model.root)
    matrices = conflict_matrices(rows)
    sentences = [m.sentence() for m in matrices.values()]
    emit(on_event, Progress("report", 2, 3, "drawing"))
    out = ensure_folder(Path(cfg.out) if cfg.out else RunLayout(model.root).report)
    page = _page(model, rows, matrices, fmap, probes, ref, sentences, t0)
    path = atomic_write_text(out / REPORT_FILE, page)
    emit(on_event, Progress("report", 3, 3, f"wrote {path.name}"))
    emit(on_event, Log("info", f"report written: {path}"))
    return ReportResult(path, sentences, time.perf_counter() - t0)


def _page(model, rows, matrices, fmap: FolderMap, probes, ref: FitReference, sentences, t0) -> str:
    cfg = model.config
    title = f"GCL Studio run report: {model.root.name}"
    head = (f"<h1>{escape(title)}</h1><p class='meta'>{escape(str(model.root))} · checkpoint step {model.step} of "
            f"{cfg.steps} · method {escape(cfg.method)} · meta labels {escape(', '.join(model.meta_labels) or 'none')}"
            f" · written {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by GCL Studio {__version__}</p>")
    summary = "".join(f"<li>{escape(s)}</li>" for s in sentences) or "<li>No conflicts logged (one meta label).</li>"
    sections = [
        head, f"<h2>In plain words</h2><ul>{summary}</ul>",
        "<h2>Loss per meta label and branch</h2>" + _loss_charts(rows),
        "<h2>Conflict matrix</h2>" + _conflicts(rows, matrices),
        "<h2>Embedding spread</h2>" + _spread(rows),
        "<h2>Linear probe of the embeddings on the meta labels</h2>" + _probe_table(probes),
        "<h2>Map of the folder</h2>" + _maps(fmap),
        "<h2>Does a scan fit? (calibration)</h2>" + _fit(ref),
        "<h2>Timings</h2>" + _timings(rows, fmap, t0),
        "<h2>Configuration</h2><pre>" + escape(json.dumps(to_dict(cfg), indent=2, sort_keys=True)) + "</pre>",
    ]
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(sections)}</body></html>\n")


_CSS = ("body{font-family:sans-serif;max-width:1000px;margin:24px auto;color:#222;padding:0 12px}"
        "h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}.meta{color:#666}"
        "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:center}"
        "pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}.note{color:#555;font-size:13px}"
        "img{max-width:100%}")


def _series(rows: list[dict], keys: list[str]) -> dict[str, tuple[list[int], list[float]]]:
    out: dict[str, tuple[list[int], list[float]]] = {}
    for row in rows:
        for key in keys:
            value = row.get(key)
            if isinstance(value, (int, float)) and value == value:
                steps, ys = out.setdefault(key, ([], []))
                steps.append(int(row.get("step", 0)))
                ys.append(float(value))
    return out


def _keys(rows: list[dict], test) -> list[str]:
    return sorted({k for row in rows for k in row if test(k)})


def _loss_charts(rows: list[dict]) -> str:
    charts = []
    for branch, name in (("img", "image branch"), ("pix", "pixel branch")):
        keys = _keys(rows, lambda k, b=branch: k.startswith(f"{b}/loss/"))
        if keys:
            series = {k.split("/", 2)[2]: v for k, v in _series(rows, keys).items()}
            charts.append(line_chart(series, f"{name}: contrastive loss per meta label", "loss"))
    charts.append(line_chart(_series(rows, ["loss"]), "total loss (both branches)", "loss"))
    return "".join(charts) if rows else "<p>No metrics logged yet.</p>"


def _heat_colour(rate: float) -> str:
    """White (never fights) to red (fights in every step)."""
    r = 255
    g = b = int(round(255 - 200 * min(max(rate, 0.0), 1.0)))
    return f"#{r:02x}{g:02x}{b:02x}"


def conflict_table(matrix: ConflictMatrix) -> str:
    """The heat map: cell colour = share of steps the pair fought, text = that share and the mean cosine."""
    head = "".join(f"<th>{escape(n)}</th>" for n in matrix.labels)
    body = []
    for i, a in enumerate(matrix.labels):
        cells = []
        for j in range(len(matrix.labels)):
            if i == j:
                cells.append("<td style='background:#eee'>–</td>")
            else:
                rate, cos = matrix.conflict_rate[i, j], matrix.cosine[i, j]
                cells.append(f"<td style='background:{_heat_colour(rate)}' title='mean cosine {cos:+.3f}'>"
                             f"{rate:.0%}<br><small>cos {cos:+.2f}</small></td>")
        body.append(f"<tr><th>{escape(a)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _conflicts(rows: list[dict], matrices: dict[str, ConflictMatrix]) -> str:
    if not matrices:
        return "<p>No pairwise gradient cosines logged: the run trained one meta label (or none).</p>"
    parts = ["<p class='note'>Each cell: the share of steps in which the two meta labels' gradients pointed apart "
             "(cosine below zero), and their mean cosine. Red cells are what the Gradient Mitigator resolves.</p>"]
    for branch, matrix in matrices.items():
        parts.append(f"<h3>{escape(matrix.title)}</h3><p><b>{escape(matrix.sentence())}</b></p>")
        parts.append(conflict_table(matrix))
        parts.append(line_chart(cosine_series(rows, branch), f"{matrix.title}: gradient cosine per pair",
                                "cosine", y_range=(-1.0, 1.0)))
    return "".join(parts)


def _spread(rows: list[dict]) -> str:
    series = _series(rows, ["embedding_std"])
    note = ("<p class='note'>Mean standard deviation of the image embeddings across the batch. A spread that "
            "falls towards zero means the embeddings collapsed onto one point and learn nothing more.</p>")
    return note + line_chart(series, "embedding spread", "std across the batch")


def _probe_table(probes: list[ProbeResult]) -> str:
    if not probes:
        return "<p>No meta labels to probe.</p>"
    rows = []
    for p in probes:
        if p.accuracy is None:
            rows.append(f"<tr><td>{escape(p.label)}</td><td colspan='3'>not measurable: {escape(p.note)}</td></tr>")
        else:
            rows.append(f"<tr><td>{escape(p.label)}</td><td>{p.accuracy:.0%}</td><td>{p.baseline:.0%}</td>"
                        f"<td>{p.n_test}</td></tr>")
    return ("<p class='note'>A logistic regression on the image embeddings of about 70% of the volumes predicts "
            "each meta label on the other volumes. Accuracy well above the majority-class baseline means the "
            "embedding encodes that meta label.</p><table><tr><th>meta label</th><th>probe accuracy</th>"
            f"<th>majority baseline</th><th>test slices</th></tr>{''.join(rows)}</table>")


def map_png_base64(fmap: FolderMap, column: str, width: int = 900, height: int = 560) -> str:
    return base64.b64encode(render_map(fmap, column, width, height).png_bytes()).decode("ascii")


def _maps(fmap: FolderMap) -> str:
    parts = [f"<p class='note'>{len(fmap)} slices, each a point: its image embedding projected to 2D "
             f"({'t-SNE' if fmap.method == 'tsne' else 'PCA'}). Slices that the network sees alike lie close.</p>"]
    for column in MAP_COLUMNS:
        values = fmap.labels.get(column)
        if values is None or len(set(values)) < 2 and column != "volume":
            continue
        parts.append(f"<h3>coloured by {escape(column)}</h3>"
                     f"<img alt='map coloured by {escape(column)}' src='data:image/png;base64,"
                     f"{map_png_base64(fmap, column)}'>")
    return "".join(parts)


def _fit(ref: FitReference) -> str:
    s = ref.holdout_scores
    quant = ", ".join(f"{q}%: {np.percentile(s, q):.4f}" for q in (50, 90, 99)) if len(s) else "none"
    return (f"<p>Reference: all {len(ref.reference)} pool slices ({escape(ref.settings.features)} features, k = "
            f"{ref.settings.k}). Calibration: each pool slice scored against the {ref.settings.folds} folds it is not "
            f"in (folds of {escape(ref.holdout)}); each held-out volume or block scores the median of its slices. "
            f"Threshold = {ref.settings.percentile:g}th percentile of those scan scores = <b>{ref.threshold:.4f}</b> "
            f"(slice score percentiles {quant}). "
            "<code>gcl check-fit --run RUN --image SCAN</code> scores "
        "a scan against it.</p>")


def _timings(rows: list[dict], fmap: FolderMap, t0: float) -> str:
    stamps = [float(r["time"]) for r in rows if isinstance(r.get("time"), (int, float))]
    gaps = np.diff(stamps) if len(stamps) > 1 else np.zeros(0)
    train_s = float(gaps[(gaps > 0) & (gaps < PAUSE_S)].sum()) if len(gaps) else None
    speed = [float(r["slices_per_s"]) for r in rows if isinstance(r.get("slices_per_s"), (int, float))]
    items = [f"<li>steps logged: {len(rows)}</li>"]
    if train_s is not None:
        items.append(f"<li>training time (pauses between runs left out): {train_s:.0f} s"
                     f" ({len(rows) / max(train_s, 1e-9):.2f} steps/s)</li>")
    if speed:
        items.append(f"<li>median throughput: {np.median(speed):.0f} slices/s (two views each)</li>")
    items.append(f"<li>map of {len(fmap)} slices: {fmap.seconds:.1f} s; this report: "
                 f"{time.perf_counter() - t0:.1f} s</li>")
    return f"<ul>{''.join(items)}</ul>"
