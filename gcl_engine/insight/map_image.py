"""Draw the map of the folder as a picture with Pillow: points coloured by one column, a legend, a title.

Pillow (not matplotlib, which the engine does not import) rasterises points and text; the same picture is
what ``gcl map`` writes as PNG, what the report embeds and what the data panel shows. The picture comes
with each point's pixel position, so a click in the GUI finds the nearest point without redrawing.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gcl_engine.insight.results import FolderMap, MapImage
from gcl_engine.io.atomic import atomic_write_bytes

# 20 colours that stay apart on dark and light backgrounds (chosen here, in the spirit of Tableau's 20)
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#1f77b4", "#ffbb78", "#98df8a", "#d62728", "#c5b0d5", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#aec7e8")
UNKNOWN_COLOUR = "#7f7f7f"
LEGEND_ROWS = 18


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def category_colours(values: list[str]) -> dict[str, str]:
    """A colour per category, in natural order ("position 2/4" before "10/4"); unknown is grey."""
    cats = sorted(set(values), key=_natural)
    known = [c for c in cats if c != "unknown"]
    colours = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(known)}
    if "unknown" in cats:
        colours["unknown"] = UNKNOWN_COLOUR
    return colours


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def render_map(fmap: FolderMap, colour_by: str = "volume", width: int = 900, height: int = 600,
               dark: bool = False, title: str | None = None) -> MapImage:
    """The map as RGBA pixels; ``colour_by`` is a column of ``fmap.labels`` (falls back to "volume")."""
    width, height = max(int(width), 320), max(int(height), 240)
    column = colour_by if colour_by in fmap.labels else "volume"
    values = fmap.labels.get(column) or ["?"] * len(fmap)
    colours = category_colours(values)
    bg, fg, grid = ("#262930", "#d0d0d0", "#3a3d45") if dark else ("#ffffff", "#202020", "#e6e6e6")
    image = Image.new("RGBA", (width, height), bg)
    draw = ImageDraw.Draw(image)
    font, small = _font(13), _font(11)
    legend_w = min(240, width // 3)
    left, top, right, bottom = 12, 30, width - legend_w - 12, height - 12
    draw.rectangle([left, top, right, bottom], outline=grid)
    method = {"tsne": "t-SNE", "pca": "PCA"}.get(fmap.method, fmap.method)
    heading = title or (f"{len(fmap)} slices coloured by {column}"
                        + (f" ({method}, checkpoint step {fmap.step})" if fmap.method else ""))
    draw.text((left, 8), heading, fill=fg, font=font)
    pixels = _to_pixels(fmap.xy, left + 8, top + 8, right - 8, bottom - 8)
    radius = 4 if len(fmap) <= 500 else 3 if len(fmap) <= 3000 else 2
    order = np.random.default_rng(0).permutation(len(fmap))  # no category always hides under another
    for i in order:
        x, y = pixels[i]
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colours[values[i]])
    _legend(draw, values, colours, right + 14, top, column, fg, small, width - right - 20)
    return MapImage(np.asarray(image, dtype=np.uint8).copy(), pixels, colours)


def _to_pixels(xy: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Data coordinates -> pixels, equal scale on both axes (distances on the map mean the same both ways)."""
    if not len(xy):
        return np.zeros((0, 2))
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.maximum(hi - lo, 1e-9)
    scale = min((x1 - x0) / span[0], (y1 - y0) / span[1])
    centre = (lo + hi) / 2
    px = (x0 + x1) / 2 + (xy[:, 0] - centre[0]) * scale
    py = (y0 + y1) / 2 - (xy[:, 1] - centre[1]) * scale  # y up, as on a plot
    return np.stack([px, py], axis=1)


def _fit_text(draw, text: str, font, max_px: int) -> str:
    """``text``, shortened with an ellipsis until it fits ``max_px`` pixels."""
    if draw.textlength(text, font=font) <= max_px:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=font) > max_px:
        text = text[:-1]
    return text + "…"


def _legend(draw, values: list[str], colours: dict[str, str], x: int, y: int, column: str, fg: str, font,
            max_px: int) -> None:
    counts = Counter(values)
    shown = sorted(colours, key=_natural)
    if len(shown) > LEGEND_ROWS:  # many volumes: the largest groups, then how many more
        shown = sorted(sorted(colours, key=lambda c: -counts[c])[:LEGEND_ROWS - 1], key=_natural)
    draw.text((x, y), column, fill=fg, font=font)
    for row, cat in enumerate(shown, start=1):
        cy = y + 4 + row * 17
        draw.ellipse([x, cy + 2, x + 9, cy + 11], fill=colours[cat])
        count = f" ({counts[cat]})"
        label = _fit_text(draw, cat, font, max_px - 15 - int(draw.textlength(count, font=font)))
        draw.text((x + 15, cy), label + count, fill=fg, font=font)
    if len(colours) > len(shown):
        draw.text((x, y + 4 + (len(shown) + 1) * 17), f"… and {len(colours) - len(shown)} more", fill=fg,
                  font=font)


def write_map_png(image: MapImage, path: str | Path) -> Path:
    return atomic_write_bytes(path, image.png_bytes())
