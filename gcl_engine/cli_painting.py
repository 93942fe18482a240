"""``gcl interpolate`` and ``gcl suggest``: the painting aids, as console commands.

``interpolate`` fills the slices between painted slices of a label map (no model); ``suggest`` ranks the
unpainted slices of a scan for painting next with a fine-tuned model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gcl_engine import api

AXES = {"k": 0, "j": 1, "i": 2}


def add_parsers(sub) -> None:
    p = sub.add_parser("interpolate", help="fill the slices between painted slices of a label map (no model)")
    p.add_argument("--labels", required=True, help="label map with a few painted slices")
    p.add_argument("--out", required=True, help="output label map (.nii.gz, .nii, .nrrd, .mha)")
    p.add_argument("--slices", help="the painted slices (default: every slice holding a label)")
    p.add_argument("--axis", choices=list(AXES), default="k", help="slicing axis in ITK index terms")
    p.add_argument("--method", choices=list(api.INTERPOLATION_METHODS), default="sdf",
                   help="sdf: shape-based (signed distances); mci: ITK's MorphologicalContourInterpolator")
    p.add_argument("--unknown-value", type=int, help="label value of unpainted voxels (scribbles)")
    s = sub.add_parser("suggest", help="rank the unpainted slices of a scan for painting next")
    s.add_argument("--model", required=True, help="fine-tuned .pt or exported .onnx")
    s.add_argument("--image", required=True)
    s.add_argument("--labels", required=True, help="the label map painted so far (its painted slices are skipped)")
    s.add_argument("--unknown-value", type=int, help="label value of unpainted voxels (scribbles)")
    s.add_argument("--top", type=int, default=5)
    s.add_argument("--strategy", default="default",
                   help="default (= distance: evenly spread over the structures), uncertainty or uncertainty_distance")
    s.add_argument("--json", action="store_true", help="the ranking as JSON")


def _slices(text: str | None) -> list[int] | None:
    return None if text is None else [int(t) for t in text.split(",") if t.strip()]


def run_interpolate(args: argparse.Namespace) -> int:
    labels = api.load_volume(args.labels)
    filled, painted = api.interpolate_volume(labels.array, labels.geometry.spacing, AXES[args.axis], args.method,
                                             args.unknown_value, _slices(args.slices))
    if len(painted) < 2:
        raise api.InputError(args.labels, f"{len(painted)} painted slice(s): paint at least two to interpolate between")
    names = {k: v for k, v in api.read_label_names(args.labels).names.items() if k != args.unknown_value}
    written = api.export_mask(filled, labels, args.out, names or None)  # an export: one audit line
    print(f"{args.labels} -> {written}: {len(painted)} painted slice(s) {painted}, "
          f"{max(0, painted[-1] - painted[0] + 1 - len(painted))} filled by {args.method}")
    return 0


def run_suggest(args: argparse.Namespace) -> int:
    segmenter = api.Segmenter.load(args.model)
    image = api.load_volume(args.image)
    labels = api.load_volume(args.labels)
    if labels.array.shape != image.array.shape:
        raise api.InputError(args.labels, f"label shape {labels.array.shape} does not match the image's "
                                          f"{image.array.shape}")
    painted = api.painted_slices(np.moveaxis(labels.array, segmenter.preprocess.axis, 0), args.unknown_value)
    ranking = api.rank_slices(segmenter, image, painted, strategy=args.strategy, top=args.top)
    if args.json:
        print(json.dumps([{"slice": s.slice, "score": s.score, "uncertainty": s.uncertainty,
                           "distance": s.distance} for s in ranking], indent=2))
        return 0
    print(f"painted: {', '.join(map(str, painted)) or 'none'}; paint next ({Path(args.model).name}):")
    print(f"{'slice':>6} {'score':>7} {'uncertainty':>12} {'distance':>9}")
    for s in ranking:
        print(f"{s.slice:>6} {s.score:>7.3f} {s.uncertainty:>12.3f} {s.distance:>9.0f}")
    return 0


COMMANDS = {"interpolate": run_interpolate, "suggest": run_suggest}
