"""Data-parallel plumbing: one process or many under ``torchrun``, same code path.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; when ``WORLD_SIZE`` > 1 we
join a process group. On CUDA each rank first takes its own GPU (``LOCAL_RANK``) and the
group gets two backends: NCCL for CUDA tensors (gradients, metric sums on the device) and
gloo for CPU tensors (objects such as the run directory's name). On the CPU it is gloo alone.

Everything else asks :func:`state` and uses the collectives below, which are no-ops in one
process. Each is a synchronisation point: every rank must call it, in the same order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from dlnd.errors import UserError


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


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; asking for one that is absent is a user error.
    Under ``torchrun`` on CUDA, each rank gets the GPU of its ``LOCAL_RANK``."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise UserError(
            f"--device {name} was asked for but is not available here; use --device cpu."
        )
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


def init_from_env(device_type: str) -> DistState:
    """Join the process group ``torchrun`` describes, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        if device_type == "cuda":
            # NCCL binds each process to the current device: set it before the group starts,
            # or every rank would talk through GPU 0.
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group(backend="cpu:gloo,cuda:nccl")
        else:
            dist.init_process_group(backend="gloo")
    return state()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place (on its own device); returns it."""
    if state().enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Replace each gradient by its mean over all processes, in one collective.

    Each rank's loss is the mean over its equal share of the global batch, so the mean of
    the ranks' gradients is the gradient of the whole batch: the update one process would
    make. Every rank must hold gradients for the same parameters.
    """
    if not state().enabled:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= state().world_size
    for grad, averaged in zip(grads, flat.split([g.numel() for g in grads])):
        grad.copy_(averaged.view_as(grad))


def broadcast_module(module: nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (so all start from the same model)."""
    if not state().enabled:
        return
    for tensor in (*module.parameters(), *module.buffers()):
        dist.broadcast(tensor.data, src=0)


def average_buffers(module: nn.Module) -> None:
    """Average floating-point buffers (batch-norm running statistics) over the ranks.

    Each rank updates its running statistics on its own share of the data; averaging them
    at the end of an epoch makes every rank evaluate, and rank 0 save, the same model.
    """
    if not state().enabled:
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer.data, op=dist.ReduceOp.SUM)
            buffer.data /= state().world_size


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
