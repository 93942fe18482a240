"""The data panel's scan of the bundled sample folder, then the training child's scan of it (issue 12).

Two ways of doing the pair, both timed on the same folder with a fresh cache each repeat:
  * separate: the window scans without a cache (reads every volume's pixels), then the child scans into the
    run's cache (reads and decodes every volume again, normalises, writes the cache);
  * shared: the window scans into the cache the job will use (one read per volume), the child's scan is a
    cache hit (headers only).
Pixel reads are counted by wrapping SimpleITK's readers (``ImageFileReader.Execute``,
``ImageSeriesReader.Execute``, ``ReadImage``) and nibabel's array access, so "each file read once" is a number.

    nice -n 5 .venv/bin/python benchmarks/sample_scan.py [--repeats 3] [--size 64]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import SAMPLE_DATA, Report, base_parser, be_nice, markdown_table, median

COUNTS = {"pixel_reads": 0}


def _count_pixel_reads() -> None:
    """Wrap the libraries' pixel readers once; the engine's own code is left as it is."""
    import SimpleITK as sitk

    def wrap(owner, name):
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            COUNTS["pixel_reads"] += 1
            return original(*args, **kwargs)

        setattr(owner, name, counted)

    wrap(sitk.ImageFileReader, "Execute")
    wrap(sitk.ImageSeriesReader, "Execute")
    try:
        import nibabel.arrayproxy as proxy

        wrap(proxy.ArrayProxy, "__array__")
    except ImportError:
        pass


def _timed(fn) -> tuple[float, int]:
    COUNTS["pixel_reads"] = 0
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0, COUNTS["pixel_reads"]


def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", type=int, default=64, help="the quick preset's image size")
    args = p.parse_args()
    be_nice(args.nice)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from gcl_engine import api

    _count_pixel_reads()
    folder = SAMPLE_DATA / "scans"
    report = Report("sample_scan", "Sample folder: the window's scan, then the training child's",
                    args, {"repeats": args.repeats, "size": args.size, "folder": str(folder)})
    pre = api.PreprocessConfig(size=args.size)
    api.scan_folder(folder)  # imports and the page cache warmed once, outside the timings
    rows, raw = [], {"separate": [], "shared": []}
    for _ in range(args.repeats):
        for mode in ("separate", "shared"):
            cache = Path(tempfile.mkdtemp(prefix="gcl-sample-scan-"))
            try:
                window = (lambda: api.scan_folder(folder)) if mode == "separate" else (
                    lambda c=cache: api.scan_folder(folder, cache=c, preprocess=pre))
                gui_s, gui_reads = _timed(window)
                child_s, child_reads = _timed(lambda c=cache: api.scan_folder(folder, cache=c, preprocess=pre))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            raw[mode].append({"window_s": gui_s, "child_s": child_s, "window_reads": gui_reads,
                              "child_reads": child_reads})
    volumes = len(api.scan_folder(folder).volumes)
    for mode, label in (("separate", "window scans without a cache, child scans again"),
                        ("shared", "window scans into the job's cache, child hits it")):
        runs = raw[mode]
        window, child = median([r["window_s"] for r in runs]), median([r["child_s"] for r in runs])
        rows.append([label, window, child, window + child, runs[0]["window_reads"], runs[0]["child_reads"]])
    report.meta["config"]["volumes"] = volumes
    report.add(f"`{folder.relative_to(SAMPLE_DATA.parent.parent)}`: {volumes} volumes; median of {args.repeats} "
               f"repeats, fresh cache each; image size {args.size} (the quick preset).\n")
    report.add(markdown_table(["path", "window s", "child s", "total s", "pixel reads (window)",
                               "pixel reads (child)"], rows))
    report.data.update(raw)
    if not args.no_write:
        report.write()


if __name__ == "__main__":
    main()
