"""Optimizers and per-step learning-rate schedules (none, step, cosine; linear warm-up).

A model may define ``param_groups()``: torch parameter groups (``{"params": [...], ...}``), each
with an optional ``lr_mult`` (learning rate ``train.lr * lr_mult``) and any other optimizer
option of its own (``weight_decay``, ...). Parameters that do not require gradients are left
out either way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from rnnvision_kit.config import TrainConfig
from rnnvision_kit.errors import ConfigError


def param_groups(model: torch.nn.Module | Iterable[Any], lr: float) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: ``model.param_groups()`` when the model defines it
    (``lr_mult`` turned into ``lr``), else one group of all trainable parameters."""
    define = getattr(model, "param_groups", None)
    if isinstance(model, torch.nn.Module) and callable(define):
        raw = list(define())
    elif isinstance(model, torch.nn.Module):
        raw = [{"params": list(model.parameters())}]
    else:
        items = list(model)
        raw = items if items and isinstance(items[0], dict) else [{"params": items}]
    groups = []
    for group in raw:
        group = dict(group)
        group["params"] = [p for p in group["params"] if p.requires_grad]
        mult = float(group.pop("lr_mult", 1.0))
        if not group["params"]:
            continue
        group.setdefault("lr", lr * mult)
        groups.append(group)
    return groups


def build_optimizer(
    params: torch.nn.Module | Iterable[Any], cfg: TrainConfig
) -> torch.optim.Optimizer:
    """sgd (with momentum), adagrad, rmsprop, adam or adamw from the train config, over
    :func:`param_groups` of a model (or of parameters / parameter groups)."""
    groups = param_groups(params, cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"train.optimizer: unknown optimizer {cfg.optimizer!r}")


def lr_factor(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """The multiplier of the base learning rate after ``step`` optimizer steps."""
    warmup = cfg.warmup_epochs * steps_per_epoch
    if warmup and step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "none":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** (step // (cfg.step_size * steps_per_epoch))
    total = max(1.0, cfg.epochs * steps_per_epoch - warmup)
    progress = min(1.0, (step - warmup) / total)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, cfg, max(1, steps_per_epoch))
    )
