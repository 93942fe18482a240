"""``make demo``: the whole pipeline on the bundled real scans, printing what it measured.

scan -> GCL pre-training -> fine-tune on 3 annotated slices of the CT (pre-trained, and from scratch for
comparison) -> predict the whole volume -> NIfTI export -> Dice on the slices not annotated -> overlay PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from gcl_engine import api
from gcl_engine.cli_output import TerminalReporter, print_scan
from gcl_engine.io.sample_data import class_names

# large enough to be learnt from 3 slices at 128 px, small enough to be a real test (kidneys, aorta, IVC)
DEMO_CLASSES = {5: "liver", 1: "spleen", 2: "kidney_right", 3: "kidney_left", 6: "stomach", 52: "aorta",
                63: "inferior_vena_cava"}
PALETTE = np.array([[0, 0, 0], [230, 80, 60], [60, 160, 230], [240, 200, 40], [200, 100, 240], [80, 200, 120],
                    [250, 130, 200], [120, 240, 240]], dtype=np.uint8)


def evenly_spread(n: int, k: int) -> list[int]:
    return sorted({int((i + 0.5) * n / k) for i in range(k)})


def remap(labels: np.ndarray, mapping: dict[int, str]) -> np.ndarray:
    out = np.zeros(labels.shape, np.uint8)
    for new, old in enumerate(mapping, start=1):
        out[labels == old] = new
    return out


def dice_per_class(pred: np.ndarray, ref: np.ndarray, n_classes: int) -> list[float]:
    scores = []
    for c in range(1, n_classes):
        p, r = pred == c, ref == c
        denom = p.sum() + r.sum()
        scores.append(float(2 * (p & r).sum() / denom) if denom else float("nan"))
    return scores


def overlay_png(image: np.ndarray, labels: np.ndarray, slices: list[int], path: Path,
                direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)) -> None:
    """Grey CT with the predicted classes blended on top, one panel per slice, side by side (SimpleITK PNG).

    Shown in radiological convention (patient's right on the left, anterior up) for axis-aligned scans.
    """
    flip_cols, flip_rows = direction[0] < 0, direction[4] < 0
    panels = []
    for s in slices:
        grey = np.clip((image[s].astype(np.float32) + 250) / 600, 0, 1)
        rgb = np.repeat((grey * 255)[..., None], 3, axis=2)
        colour = PALETTE[labels[s] % len(PALETTE)].astype(np.float32)
        mask = (labels[s] > 0)[..., None]
        panel = np.where(mask, 0.45 * rgb + 0.55 * colour, rgb).astype(np.uint8)
        panels.append(panel[::-1 if flip_rows else 1, ::-1 if flip_cols else 1])
    sheet = np.concatenate(panels, axis=1)
    big = np.kron(sheet, np.ones((3, 3, 1), np.uint8))
    sitk.WriteImage(sitk.GetImageFromArray(big, isVector=True), str(path))


def run_demo(out: Path, pretrain_steps: int, finetune_steps: int, size: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    samples = api.sample_paths()
    reporter = TerminalReporter()
    print(f"== 1. scan {samples['scans']}")
    scan = api.scan_folder(samples["scans"])
    print_scan(scan)
    print(f"\n== 2. GCL pre-training ({pretrain_steps} steps at {size} px; device auto: CUDA when present, else CPU)")
    pre = api.PreprocessConfig(size=size)
    t0 = time.perf_counter()
    pt = api.pretrain(api.PretrainConfig(folder=str(samples["scans"]), out=str(out / "pretrain"), steps=pretrain_steps,
                                         preprocess=pre, checkpoint_every=max(1, pretrain_steps // 4)),
                      on_event=reporter)
    pretrain_s = time.perf_counter() - t0
    rows = api.read_metrics(out / "pretrain")
    first, last = np.mean([r["loss"] for r in rows[:10]]), np.mean([r["loss"] for r in rows[-10:]])
    print(f"pre-trained {pt.steps_done} steps in {pretrain_s:.0f} s on meta labels {pt.meta_labels}: "
          f"loss {first:.2f} -> {last:.2f}")
    return _finetune_and_score(out, samples, pt.checkpoint, finetune_steps, pre, pretrain_s, reporter)


def _finetune_and_score(out, samples, checkpoint, steps, pre, pretrain_s, reporter) -> dict:
    image = api.load_volume(samples["ct"])
    ref_full = api.load_volume(samples["ct_labels"]).array
    ref = remap(ref_full, DEMO_CLASSES)
    names = ["background"] + list(DEMO_CLASSES.values())
    assert all(class_names("ct_labels")[k] == v for k, v in DEMO_CLASSES.items())
    labels_path = api.export_nifti(ref, image, out / "reference_7_organs.nii.gz", label_names=names)
    annotated = evenly_spread(ref.shape[0], 3)
    held_out = [s for s in range(ref.shape[0]) if s not in annotated]
    results = {"annotated_slices": annotated, "pretrain_seconds": round(pretrain_s, 1), "classes": names[1:]}
    for name, pretrained in (("gcl", checkpoint), ("scratch", None)):
        print(f"\n== 3. fine-tune ({name}) on slices {annotated} of the CT, {steps} steps")
        cfg = api.FinetuneConfig(image=str(samples["ct"]), labels=str(labels_path), slices=tuple(annotated),
                                 class_names=tuple(names), out=str(out / f"model_{name}.pt"), pretrained=pretrained,
                                 steps=steps, preprocess=pre)
        t0 = time.perf_counter()
        api.finetune(cfg, on_event=reporter)
        pred = api.Segmenter.load(cfg.out).predict(image)
        dice = dice_per_class(pred.labels[held_out], ref[held_out], len(names))
        results[name] = {"dice_per_class": dict(zip(names[1:], dice, strict=True)),
                         "mean_dice": float(np.nanmean(dice)), "finetune_seconds": round(time.perf_counter() - t0, 1)}
        api.export_nifti(pred.labels, image, out / f"prediction_{name}.nii.gz", label_names=names)
        if name == "gcl":
            overlay_png(image.array, pred.labels, [annotated[0] + 2, annotated[1] + 2, annotated[2] - 2],
                        out / "overlay_gcl.png", image.geometry.direction)
    return results


def print_results(results: dict, out: Path) -> None:
    print(f"\n== 4. Dice on the {30 - len(results['annotated_slices'])} slices not annotated")
    print(f"{'class':<20} {'GCL':>7} {'scratch':>8}")
    for c in results["classes"]:
        print(f"{c:<20} {results['gcl']['dice_per_class'][c]:>7.3f} {results['scratch']['dice_per_class'][c]:>8.3f}")
    print(f"{'mean':<20} {results['gcl']['mean_dice']:>7.3f} {results['scratch']['mean_dice']:>8.3f}")
    print(f"\nwrote {out}/prediction_gcl.nii.gz (source geometry, label names in .labels.json / .label.txt), "
          f"{out}/overlay_gcl.png, {out}/demo_results.json")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gcl demo", description=__doc__)
    p.add_argument("--out", default="demo_output")
    p.add_argument("--pretrain-steps", type=int, default=150)
    p.add_argument("--finetune-steps", type=int, default=300)
    p.add_argument("--size", type=int, default=128)
    args = p.parse_args(argv)
    out = Path(args.out)
    results = run_demo(out, args.pretrain_steps, args.finetune_steps, args.size)
    (out / "demo_results.json").write_text(json.dumps(results, indent=2))
    print_results(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
