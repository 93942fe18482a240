"""Line charts as SVG text, for the report: vector, self-contained in the HTML, readable at any zoom.

Small on purpose: axes with round ticks, one polyline per series, a legend below. Long series are thinned
to at most ``MAX_POINTS`` points per line (every k-th, the last kept), which keeps a page of a 10,000-step
run small.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
MAX_POINTS = 600
Series = dict[str, tuple[list[float], list[float]]]


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _thin(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    if len(xs) <= MAX_POINTS:
        return xs, ys
    k = math.ceil(len(xs) / MAX_POINTS)
    idx = list(range(0, len(xs), k))
    if idx[-1] != len(xs) - 1:
        idx.append(len(xs) - 1)
    return [xs[i] for i in idx], [ys[i] for i in idx]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


def line_chart(series: Series, title: str, y_label: str, x_label: str = "step", width: int = 720,
               height: int = 300, y_range: tuple[float, float] | None = None, dashed: frozenset = frozenset()) -> str:
    """An ``<svg>`` element; ``series`` maps a legend name to (xs, ys); names in ``dashed`` draw dashed."""
    data = {k: _thin(list(map(float, x)), list(map(float, y))) for k, (x, y) in series.items() if len(x)}
    legend_rows = math.ceil(len(data) / 3)
    plot_h = height
    total_h = plot_h + 18 * legend_rows + 8
    left, right, top, bottom = 58, width - 16, 28, plot_h - 38
    if not data:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="60" role="img">'
                f'<text x="8" y="30" font-size="13">{escape(title)}: nothing logged</text></svg>')
    xs_all = [x for xs, _ in data.values() for x in xs]
    ys_all = [y for _, ys in data.values() for y in ys if math.isfinite(y)]
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = y_range if y_range else (min(ys_all, default=0.0), max(ys_all, default=1.0))
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    x1 = x1 if x1 > x0 else x0 + 1

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y0) / (y1 - y0) * (bottom - top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" role="img" '
           f'font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#bbb"/>']
    for t in nice_ticks(y0, y1):
        if y0 <= t <= y1:
            out.append(f'<line x1="{left}" x2="{right}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
                       f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in nice_ticks(x0, x1, 6):
        if x0 <= t <= x1:
            out.append(f'<text x="{px(t):.1f}" y="{bottom + 15}" text-anchor="middle">{_fmt(t)}</text>')
    out.append(f'<text x="{(left + right) / 2}" y="{bottom + 30}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(14,{(top + bottom) / 2}) rotate(-90)" text-anchor="middle">'
               f'{escape(y_label)}</text>')
    for i, (name, (xs, ys)) in enumerate(sorted(data.items())):
        colour = PALETTE[i % len(PALETTE)]
        points = " ".join(f"{px(x):.1f},{py(min(max(y, y0), y1)):.1f}" for x, y in zip(xs, ys, strict=True)
                          if math.isfinite(y))
        dash = ' stroke-dasharray="5,3"' if name in dashed else ""
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} points="{points}">'
                   f'<title>{escape(name)}</title></polyline>')
        lx, ly = left + (i % 3) * ((right - left) / 3), plot_h + 4 + 18 * (i // 3)
        out.append(f'<line x1="{lx:.0f}" x2="{lx + 18:.0f}" y1="{ly + 6}" y2="{ly + 6}" stroke="{colour}" '
                   f'stroke-width="2"{dash}/><text x="{lx + 24:.0f}" y="{ly + 10}">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)
