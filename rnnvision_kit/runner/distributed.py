"""Distributed data parallel through ``torchrun``: process group, samplers, reductions."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Iterator, Sized
from dataclasses import dataclass
from typing import NoReturn, cast

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

_joined = False  # this process joined a process group (whose worker threads outlive it)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (``world_size == 1`` when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_name: str = "auto", backend: str = "auto") -> DistInfo:
    """Join the process group when ``torchrun`` set ``WORLD_SIZE`` > 1. ``auto``: NCCL for CUDA
    tensors with gloo beside it for the CPU tensors the loop reduces (loss totals, stop flags);
    gloo on the CPU. More processes than GPUs on a node share them (``local_rank % GPUs``)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dist.init_process_group(backend=process_group_backend(backend, use_cuda))
        global _joined
        _joined = True
    return DistInfo(rank, world_size, local_rank)


def process_group_backend(backend: str, use_cuda: bool) -> str:
    """The ``init_process_group`` backend for ``train.dist_backend`` (auto, nccl, gloo)."""
    if not use_cuda or backend == "gloo":
        return "gloo"  # gloo reduces CUDA tensors too (slower than NCCL)
    return "cpu:gloo,cuda:nccl"


def shutdown_distributed() -> None:
    """Leave the process group (a no-op outside DDP)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def joined_process_group() -> bool:
    """Whether this process joined a process group (:func:`init_distributed` under torchrun)."""
    return _joined


def exit_without_finalizing(code: int) -> NoReturn:
    """End a process that joined a process group: ``atexit`` handlers, flushed output, then
    ``os._exit(code)``, skipping the interpreter's finalization.

    gloo's worker threads outlive ``destroy_process_group`` (something in C++ keeps the group),
    and a worker that frees a collective's Python-made tensor (``all_gather_object``'s) must take
    the GIL. If the interpreter has begun to finalize, taking it ends the thread, and that
    thread's unwinding through a ``noexcept`` destructor aborts the process ("terminate called
    without an active exception", exit -6; pytorch/pytorch#190489). It happened to the rank that
    finished first, in about one 2-process run in ten on a loaded 2-core machine, after all of
    the run's work was done, and a barrier before leaving did not prevent it. Nothing is left to
    finalize that matters: files are closed where written, and ``multiprocessing`` ends its
    children from its ``atexit`` handler, as ``multiprocessing``'s own workers end."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a broken pipe
            stream.flush()
    os._exit(code)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all processes (a no-op outside DDP)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum of a tensor over all processes (a no-op outside DDP)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def launched_rank() -> int:
    """This process's rank as torchrun set it (0 when not launched by torchrun), known before
    the process group is joined."""
    return int(os.environ.get("RANK", "0"))


class ShardSampler(Sampler[int]):
    """Evaluation sampler: rank ``r`` gets indices ``r, r + W, ...`` with no padding, so every
    sample is counted exactly once (``DistributedSampler`` pads by repeating samples)."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class SkipSampler(Sampler[int]):
    """Yields a base sampler's indices after skipping the first ``skip`` (mid-epoch resume)."""

    def __init__(self, base: Sampler[int], skip: int = 0) -> None:
        self.base = base
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        iterator = iter(self.base)
        for _ in range(self.skip):
            next(iterator, None)
        return iterator

    def __len__(self) -> int:
        return max(0, len(cast(Sized, self.base)) - self.skip)  # a DistributedSampler's
