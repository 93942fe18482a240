"""``gcl map``, ``gcl report`` and ``gcl check-fit``: what pre-training learnt, as console commands.

``map`` and ``report`` also run as the GUI's child processes (``--config`` with ``--events json``), the
same way pre-training does; ``check-fit`` prints a verdict and exits 0 whether the scan fits or not.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from gcl_engine import api


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", nargs="?", help="pre-training run folder (config.json, last.pt)")
    p.add_argument("--out", help="output folder")
    p.add_argument("--config", help="JSON config (what the GUI writes); options given here override it")
    p.add_argument("--method", choices=["auto", "pca", "tsne"],
                   help="2D projection (auto: t-SNE up to 5,000 slices, PCA beyond)")
    p.add_argument("--max-slices", type=int, help="slices to embed, spread over the volumes (0: all; default 3000)")
    p.add_argument("--colour-by", help="volume (default) or a meta label: subject, position, phase, series")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--threads", type=int)
    p.add_argument("--events", choices=["text", "json"], default="text")
    p.add_argument("--cancel-file", help="stop when this file appears")
    p.add_argument("--background", action="store_true", help="run as a GUI's worker (lower CPU priority)")


def add_parsers(sub) -> None:
    m = sub.add_parser("map", help="map of the folder: 2D projection of every slice's embedding (PNG + CSV)")
    _common(m)
    r = sub.add_parser("report", help="one self-contained HTML page about a pre-training run")
    _common(r)
    c = sub.add_parser("check-fit", help="does a scan fit the pre-training pool? score, threshold, verdict")
    c.add_argument("--run", required=True, help="pre-training run folder")
    c.add_argument("--image", required=True, help="a scan file or DICOM folder")
    c.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    c.add_argument("--json", action="store_true", help="the verdict as JSON")


def _config(cls, args: argparse.Namespace):
    cfg = api.load_json(cls, args.config) if args.config else cls()
    fields = {name: getattr(args, name) for name in ("run", "out", "method", "max_slices", "colour_by", "device",
                                                      "threads") if getattr(args, name, None) is not None}
    cfg = dataclasses.replace(cfg, **fields)
    cfg.validate()
    return cfg


def run_map(args: argparse.Namespace, sink, cancel) -> int:
    result = api.map_folder(_config(api.MapConfig, args), on_event=sink, cancel=cancel)
    if args.events != "json":
        print(f"wrote {result.csv} and {result.png}: {len(result.map)} slices ({result.map.method}, checkpoint "
              f"step {result.map.step}); fit-check threshold {result.threshold:.4f}")
    return 0


def run_report(args: argparse.Namespace, sink, cancel) -> int:
    result = api.write_report(_config(api.ReportConfig, args), on_event=sink, cancel=cancel)
    if args.events != "json":
        print(f"wrote {result.path}")
        for sentence in result.sentences:
            print(f"  {sentence}")
    return 0


def run_check_fit(args: argparse.Namespace) -> int:
    verdict = api.check_fit(args.run, args.image, device=args.device)
    print(json.dumps(verdict.to_dict(), indent=2) if args.json else f"{args.image}: {verdict.line()}")
    return 0
