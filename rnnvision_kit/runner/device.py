"""Device selection and mixed precision (Lightning's names: ``32``, ``16-mixed``, ``bf16-mixed``)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from rnnvision_kit.config import TrainConfig
from rnnvision_kit.errors import ConfigError, one_line, warn
from rnnvision_kit.runner.distributed import DistInfo


def select_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when available (the local rank's GPU under torchrun), else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"  # the GPU is chosen below
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"train.device: unknown device {name!r} (use auto, cpu, cuda or cuda:N)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(f"train.device: {name!r} requested but this machine has {count} GPU(s)")
    if device.type == "cuda" and device.index is None:  # more processes than GPUs share them
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    return device


class Precision:
    """Autocast context and gradient scaler for one precision setting on one device."""

    def __init__(self, name: str, device: torch.device) -> None:
        self.name = name
        self.device_type = device.type
        if name == "32":
            self.dtype = None
        elif name == "bf16-mixed":
            if device.type == "cuda" and not torch.cuda.is_bf16_supported():
                raise ConfigError(
                    f"train.precision: bf16-mixed needs a GPU with bfloat16 (Ampere or newer); "
                    f"{torch.cuda.get_device_name(device)} has none: use 16-mixed"
                )
            self.dtype = torch.bfloat16
        elif name == "16-mixed":
            if device.type != "cuda":
                raise ConfigError(
                    "train.precision: 16-mixed needs CUDA; use bf16-mixed or 32 on the CPU"
                )
            self.dtype = torch.float16
        else:
            raise ConfigError(f"train.precision: {name!r} is not one of: 32, 16-mixed, bf16-mixed")
        # GradScaler only for fp16: bf16 has fp32's exponent range and needs no loss scaling.
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype is torch.float16)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.dtype is None:
            yield
        else:
            with torch.autocast(self.device_type, dtype=self.dtype):
                yield


@dataclass(frozen=True)
class Runtime:
    """Where and how a run computes, chosen once and shared by training and evaluation: the
    device, the processes (DDP) and the precision (its gradient scaler is the trainer's)."""

    device: torch.device
    precision: Precision
    dist: DistInfo = field(default_factory=DistInfo)

    @classmethod
    def select(cls, cfg: TrainConfig, dist: DistInfo | None = None) -> Runtime:
        """``train.device`` (the local rank's GPU under torchrun) and ``train.precision``."""
        dist = dist if dist is not None else DistInfo()
        device = select_device(cfg.device, dist.local_rank)
        return cls(device, Precision(cfg.precision, device), dist)


def prepare_model(model: nn.Module, cfg: TrainConfig, device: Any, dist: Any) -> nn.Module:
    """The model on ``device``: SyncBatchNorm under DDP with ``train.sync_bn``, channels-last
    weights with ``train.channels_last`` (faster convolutions on tensor-core GPUs)."""
    if cfg.sync_bn and dist.enabled:
        if device.type != "cuda":
            raise ConfigError(
                "train.sync_bn: SyncBatchNorm runs only on CUDA; set it off on the CPU"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def compiled(model: nn.Module) -> tuple[nn.Module, bool]:
    """``torch.compile(model)``, or the model itself and a one-line warning when this torch
    cannot compile (the compiler also fails lazily, at the first step: the loop falls back)."""
    try:
        return cast(nn.Module, torch.compile(model)), True  # an OptimizedModule
    except Exception as error:  # RuntimeError on unsupported Python versions, missing compilers
        warn(
            f"train.compile: torch.compile is not available ({one_line(error)}); training without it"
        )
        return model, False


def loader_options(
    workers: int, prefetch_factor: int | None, device: torch.device, *, persistent: bool
) -> dict[str, Any]:
    """DataLoader keywords: pinned memory on CUDA (copies then overlap compute), and with
    workers a prefetch depth, workers that live across epochs (no restart per epoch) and that
    leave Ctrl-C and a job-wide SIGTERM to the main process."""
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        options["persistent_workers"] = persistent
        options["worker_init_fn"] = functools.partial(leave_stop_signals, stop_announced())
        if prefetch_factor is not None:
            options["prefetch_factor"] = prefetch_factor
    return options


_ANNOUNCED: torch.Tensor | None = None


def stop_announced() -> torch.Tensor:
    """A flag in shared memory (it reaches DataLoader workers, forked or spawned): 1 once the
    main process received SIGINT or SIGTERM and will stop at a step boundary."""
    global _ANNOUNCED
    if _ANNOUNCED is None:
        _ANNOUNCED = torch.zeros(1, dtype=torch.uint8).share_memory_()
    return _ANNOUNCED


# How long a worker that got SIGTERM waits to learn whether the main process got it too.
WORKER_SIGTERM_WAIT = 1.0


def leave_stop_signals(announced: torch.Tensor, worker_id: int) -> None:
    """In a DataLoader worker: ignore Ctrl-C, and the first SIGTERM when the main process got it
    too. SLURM's SIGTERM and Ctrl-C reach every process of the job; the main process stops at a
    step boundary, saves, then shuts its workers down (a worker killed by the signal would fail
    the run first). Any other SIGTERM (``DataLoader`` ending a worker that does not exit, or a
    second one) ends the worker as usual: a worker that ignored it would hang the shutdown."""
    import os
    import signal
    import time

    def on_sigterm(signum: int, frame: Any) -> None:
        deadline = time.monotonic() + WORKER_SIGTERM_WAIT
        while not announced[0] and time.monotonic() < deadline:
            time.sleep(0.02)  # the main process may handle the same signal a moment later
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the worker
        if not announced[0]:
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_sigterm)


def move_to(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, list | tuple):
        return type(batch)(move_to(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: move_to(value, device) for key, value in batch.items()}
    return batch
