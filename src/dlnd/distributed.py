"""Data-parallel plumbing: one process or many under ``torchrun``, same code path.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; when ``WORLD_SIZE`` > 1 we
join a process group (gloo on CPU, nccl on CUDA). Everything else asks :func:`state` and
uses :func:`all_reduce_sum` / :func:`broadcast_object`, which are no-ops in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistState:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def state() -> DistState:
    """This process's place in the job (rank 0 of 1 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return DistState(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
        )
    return DistState()


def init_from_env(device_type: str) -> DistState:
    """Join the process group ``torchrun`` describes, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return state()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place; returns it."""
    if state().enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the run directory rank 0 created)."""
    if not state().enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if state().enabled:
        dist.barrier()
