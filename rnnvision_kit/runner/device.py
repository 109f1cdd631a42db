"""Device selection and mixed precision (Lightning's names: ``32``, ``16-mixed``, ``bf16-mixed``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from rnnvision_kit.config import TrainConfig
from rnnvision_kit.errors import ConfigError, one_line, warn


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
        return torch.compile(model), True
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
    leave Ctrl-C and SIGTERM to the main process."""
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        options["persistent_workers"] = persistent
        options["worker_init_fn"] = ignore_stop_signals
        if prefetch_factor is not None:
            options["prefetch_factor"] = prefetch_factor
    return options


def ignore_stop_signals(worker_id: int) -> None:
    """In a DataLoader worker: ignore SIGINT and SIGTERM. Ctrl-C, and SLURM's SIGTERM, reach
    every process of the group; the main process stops at a step boundary and saves, then
    shuts its workers down (a worker killed by the signal would fail the run instead)."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def move_to(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, list | tuple):
        return type(batch)(move_to(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: move_to(value, device) for key, value in batch.items()}
    return batch
