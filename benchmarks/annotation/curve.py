"""One curve: a simulated user paints one more slice per round, the method updates, every unpainted slice
is scored. A job is (row, task, seed); its result holds every round (painted slices, Dice, wall times)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from fewshot.tasks import load_image, load_task

from gcl_engine import api

from . import robot
from .methods import make_user
from .rows import parse_row


def dice_per_class(pred: np.ndarray, ref: np.ndarray, classes: list[int]) -> dict[int, float]:
    """3D Dice per class over the stack; a class absent from the reference is not scored."""
    out = {}
    for c in classes:
        r, p = ref == c, pred == c
        rs = int(r.sum())
        if rs:
            out[c] = 2.0 * int((r & p).sum()) / (rs + int(p.sum()))
    return out


def slice_dice(pred: np.ndarray, ref: np.ndarray, classes: list[int]) -> float:
    """Mean over slices and classes of per-slice Dice, where the reference or the prediction holds the class."""
    scores = []
    for c in classes:
        r = (ref == c).reshape(ref.shape[0], -1)
        p = (pred == c).reshape(pred.shape[0], -1)
        inter, rn, pn = (r & p).sum(1), r.sum(1), p.sum(1)
        used = (rn + pn) > 0
        if used.any() and r.any():
            scores.append(float(np.mean(2.0 * inter[used] / (rn[used] + pn[used]))))
    return float(np.mean(scores)) if scores else float("nan")


def per_slice_dice(pred: np.ndarray, ref: np.ndarray, classes: list[int], held: list[int],
                   painted: list[int]) -> list[list[float]]:
    """[slice, distance to the nearest painted slice, length of its gap (0 outside the painted range), Dice]
    for every held-out slice: the mean over classes present in its reference or prediction (1 when neither)."""
    marks = sorted(painted)
    rows = []
    for k in held:
        scores = []
        for c in classes:
            r, p = ref[k] == c, pred[k] == c
            total = int(r.sum()) + int(p.sum())
            if total:
                scores.append(2.0 * int((r & p).sum()) / total)
        before = [m for m in marks if m < k]
        after = [m for m in marks if m > k]
        gap = (after[0] - before[-1]) if before and after else 0
        dist = min(abs(k - m) for m in marks)
        rows.append([int(k), int(dist), int(gap), round(float(np.mean(scores)) if scores else 1.0, 4)])
    return rows


def score(pred: np.ndarray, ref: np.ndarray, held: list[int], painted: list[int], classes: list[int],
          small: list[int], names: tuple[str, ...]) -> dict:
    d = dice_per_class(pred[held], ref[held], classes)
    return {"dice": {names[c]: round(v, 5) for c, v in d.items()},
            "mean": float(np.mean(list(d.values()))) if d else float("nan"),
            "small": float(np.mean([d[c] for c in small if c in d])) if any(c in d for c in small) else float("nan"),
            "slice_mean": slice_dice(pred[held], ref[held], classes),
            "per_slice": per_slice_dice(pred, ref, classes, held, painted)}


def annotations_for(reference: np.ndarray, painted: list[int], paint: str, unknown: int, share: float,
                    seed: int, cache: dict[int, np.ndarray]) -> np.ndarray:
    """The label stack the user has made so far: painted slices copied (or scribbled) from the reference."""
    if paint == "scribble":
        out = np.full(reference.shape, unknown, dtype=np.int64)
        for k in painted:
            if k not in cache:
                cache[k] = robot.scribble_slice(reference[k], unknown, share, np.random.default_rng(seed * 1000 + k))
            out[k] = cache[k]
        return out
    out = np.zeros(reference.shape, dtype=np.int64)
    out[painted] = reference[painted]
    return out


def run_curve(job: dict) -> dict:
    row = parse_row(job["row"])
    task, image = load_task(job["task"]), load_image(job["task"])
    ref, seed = task.labels, int(job["seed"])
    work = Path(job["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    user = make_user(row, image, task.class_names, seed, work, str(task.image), job.get("checkpoint"))
    paint = row.get("paint", "full")
    unknown = api.UNKNOWN_LABEL if paint == "scribble" else None
    share = float(row.get("share", 0.08))
    order = row.get("order", "even")
    classes = [c for c in range(1, len(task.class_names)) if (ref == c).any()]
    small = [task.class_names.index(n) for n in task.small if n in task.class_names]
    painted: list[int] = []
    scribbles: dict[int, np.ndarray] = {}
    rounds = []
    for r in range(1, int(job["rounds"]) + 1):
        suggest_s = 0.0
        if not painted:
            nxt = robot.first_slice(ref, seed)
        elif order == "suggest" and user.suggests:
            nxt, suggest_s = user.suggest(painted)
        elif order == "sequential":
            nxt = robot.next_sequential(ref, painted)
        else:
            nxt = robot.next_even(ref, painted)
        painted.append(int(nxt))
        annotations = annotations_for(ref, painted, paint, api.UNKNOWN_LABEL, share, seed, scribbles)
        t0 = time.perf_counter()
        pred, timing = user.update(annotations, sorted(painted), unknown)
        variants = timing.pop("variants", {})
        elapsed = time.perf_counter() - t0
        if "finetune_s" in timing:  # what the user waits for: fine-tune + the main prediction (not the variants)
            elapsed = timing["finetune_s"] + timing["predict_s"]
        wall = elapsed + suggest_s
        held = [k for k in range(ref.shape[0]) if k not in painted]
        coverage = (float(np.mean([(scribbles[k] != api.UNKNOWN_LABEL).mean() for k in painted]))
                    if paint == "scribble" else 1.0)
        record = score(pred, ref, held, painted, classes, small, task.class_names)
        record.update({"round": r, "new_slice": int(nxt), "painted": sorted(painted), "wall_s": round(wall, 2),
                       "suggest_s": round(suggest_s, 2), "painted_share": round(coverage, 4), **timing})
        if variants:  # other predictions of the same model (prediction-time settings): scored alike
            record["variants"] = {name: score(p, ref, held, painted, classes, small, task.class_names)
                                  for name, p in variants.items()}
        rounds.append(record)
    shutil.rmtree(work, ignore_errors=True)
    return {"kind": "curve", "key": job["key"], "row": job["row"], "task": job["task"], "seed": seed,
            "rounds": rounds}
