"""Data parallelism without a wrapper: the same recipe runs alone, under ``torchrun`` or ``accelerate launch``.

Both launchers set ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and the rendezvous address). Every
process builds the same global order of micro-batches and takes its share; after the backward
passes of a step the gradients are summed across processes once, so a step's gradient is the
mean over the real tokens of the whole global batch (see ``loss.step_scale``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_from_env(device: str) -> Dist:
    """Join the process group the launcher describes (gloo on CPU, nccl on CUDA); a single process skips it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Dist(rank, world, local_rank, device)


def all_reduce_sum(tensor: torch.Tensor, ctx: Dist) -> torch.Tensor:
    if ctx.world > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def average_gradients(params: list[torch.nn.Parameter], ctx: Dist) -> None:
    """Average gradients over processes in one flat all-reduce (a process without data adds zeros)."""
    if ctx.world == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= ctx.world
    at = 0
    for p in params:
        n = p.numel()
        p.grad = flat[at : at + n].view_as(p).clone()
        at += n


def barrier(ctx: Dist) -> None:
    if ctx.world > 1:
        dist.barrier()


def broadcast_flag(flag: bool, ctx: Dist) -> bool:
    """Rank 0's decision (e.g. early stopping) for every process."""
    if ctx.world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def shutdown(ctx: Dist) -> None:
    if ctx.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
