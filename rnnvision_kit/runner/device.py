"""Device selection and mixed precision (Lightning's names: ``32``, ``16-mixed``, ``bf16-mixed``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from rnnvision_kit.errors import ConfigError


def select_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when available (the local rank's GPU under torchrun), else the CPU."""
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"train.device: unknown device {name!r} (use auto, cpu, cuda or cuda:N)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available here")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


class Precision:
    """Autocast context and gradient scaler for one precision setting on one device."""

    def __init__(self, name: str, device: torch.device) -> None:
        self.name = name
        self.device_type = device.type
        if name == "32":
            self.dtype = None
        elif name == "bf16-mixed":
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


def move_to(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, list | tuple):
        return type(batch)(move_to(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: move_to(value, device) for key, value in batch.items()}
    return batch
