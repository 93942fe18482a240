"""torchrun / DistributedDataParallel glue (NCCL on GPUs, gloo on CPU).

The combined batch is the unit of the maths: each rank encodes its share of the views, the encoder
outputs are gathered (detached) so every rank computes the heads, the losses and the Gradient Mitigator
on the whole batch exactly as one process would, and only the encoder's backward is split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device_kind: str) -> DistContext:
    """Join the process group that torchrun describes in the environment; single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_kind == "cuda":
        torch.cuda.set_device(local)
    return DistContext(dist.get_rank(), dist.get_world_size(), local)


def gather_detached(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate every rank's (equal-sized) tensor along dim 0, in rank order, without gradient."""
    if not ctx.enabled:
        return t.detach()
    parts = [torch.empty_like(t) for _ in range(ctx.world_size)]
    dist.all_gather(parts, t.detach().contiguous())
    return torch.cat(parts, dim=0)


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
