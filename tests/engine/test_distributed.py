"""Two gloo processes (torchrun's environment) reach the losses of one process on the combined batch."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from gcl_engine.config import PretrainConfig
from gcl_engine.training.pretrain import pretrain, read_metrics
from tests.engine.synthetic import TINY_MODEL, TINY_PRE, make_folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, cfg: PretrainConfig) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    pretrain(cfg)
    import torch.distributed as dist

    dist.destroy_process_group()


@pytest.mark.parametrize(("mitigator", "pixel_features"), [("fast", "encoder"), ("exact", "encoder"),
                                                           ("fast", "decoder")])
def test_two_processes_match_one_process(tmp_path: Path, mitigator: str, pixel_features: str):
    scans, _, _ = make_folder(tmp_path / "pool", n=3, with_labels=False)
    base = PretrainConfig(folder=str(scans), steps=3, volumes_per_batch=2, checkpoint_every=10, device="cpu",
                          threads=1, preprocess=TINY_PRE, model=TINY_MODEL, mitigator=mitigator,
                          cache=str(tmp_path / "cache"), optimizer="sgd", lr=0.05, method="gcl_no_filter",
                          pixel_features=pixel_features, pixel_level=-1 if pixel_features == "encoder" else -2)
    # with the decoder trunk, its gradients are averaged over the processes by the step (DDP wraps the encoder)
    # SGD, not Adam: Adam's first steps turn rounding-level gradient differences into +-lr moves.
    # No Gradient Filter: its top-k choice of locations flips on rounding-level saliency differences
    # (a discrete choice, not a split error), which makes later steps differ by design.
    pretrain(dataclasses.replace(base, out=str(tmp_path / "single")))
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, 2, port, dataclasses.replace(base, out=str(tmp_path / "ddp"))))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0
    single = [row["loss"] for row in read_metrics(tmp_path / "single")]
    ddp = [row["loss"] for row in read_metrics(tmp_path / "ddp")]
    assert len(single) == len(ddp) == 3
    assert ddp == pytest.approx(single, rel=1e-4, abs=1e-4)
