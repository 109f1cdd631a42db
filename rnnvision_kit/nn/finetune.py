"""Fine-tuning helpers for any model: freeze an encoder (whole, or its first N stages), freeze
BatchNorm statistics (kept through ``model.train()``), learning-rate groups for pretrained parts,
and freezing what a forward pass does not use.

An encoder's stages come from its ``stages()`` method (the encoders of ``rnnvision_kit.nn``:
small-cnn's conv blocks, ResNet's stem and layer1..4, the blocks of a torchvision ``features``
sequence, timm's ``feature_info`` levels); an encoder without one is a single stage. Its
pretrained part is its ``trunk`` (the encoder itself when it has none).

The runner builds its optimizer from ``model.param_groups()`` when the model defines it: a list
of torch parameter groups, each may carry ``lr_mult`` (its learning rate is ``train.lr *
lr_mult``, scheduled like the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from rnnvision_kit.errors import ConfigError

__all__ = [
    "encoder_stages",
    "encoder_trunk",
    "freeze_batchnorm",
    "freeze_encoder",
    "freeze_unused",
    "lr_groups",
]

_FROZEN_BN = "_rnnkit_frozen_bn"


def encoder_stages(encoder: nn.Module) -> list[list[nn.Module]]:
    """The encoder's stages from the input on (each a list of modules)."""
    stages = getattr(encoder, "stages", None)
    return stages() if callable(stages) else [[encoder]]


def encoder_trunk(encoder: nn.Module) -> nn.Module:
    """The part of an encoder that pretrained weights fill (``trunk``; else the encoder)."""
    trunk = getattr(encoder, "trunk", None)
    return trunk if isinstance(trunk, nn.Module) else encoder


def _keep_eval(module: nn.Module, _args: Any) -> None:
    module.train(False)


def freeze_batchnorm(module: nn.Module) -> int:
    """Keep every BatchNorm layer of ``module`` in eval mode (running statistics used and left
    unchanged) whatever ``model.train()`` is called; affine weights stay trainable. Returns the
    number of layers."""
    count = 0
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            if not getattr(layer, _FROZEN_BN, False):
                layer.register_forward_pre_hook(_keep_eval)
                setattr(layer, _FROZEN_BN, True)
            layer.train(False)
            count += 1
    return count


def freeze_encoder(encoder: nn.Module, stages: int | str, setting: str = "model.freeze") -> int:
    """Freeze the encoder's first ``stages`` stages, or its whole trunk (``"all"``): no gradients,
    BatchNorm statistics frozen too. A projection to ``feature_dim`` stays trainable. Returns the
    number of parameters frozen."""
    if stages in (0, "0", None, "none"):
        return 0
    trunk = encoder_trunk(encoder)
    if stages == "all":
        modules: list[nn.Module | _Direct] = [trunk]
    else:
        found = encoder_stages(encoder)
        n = int(stages)
        if n > len(found):
            name = getattr(encoder, "name", "") or type(encoder).__name__
            raise ConfigError(
                f"{setting}={n}: backbone {name} has {len(found)} stage(s); "
                f"use 0..{len(found)} or all"
            )
        modules = [m for stage in found[:n] for m in stage]
        if n and trunk is not encoder:  # parameters of the trunk itself (a ViT's class token)
            modules.append(_Direct(trunk))
    frozen = 0
    for module in modules:
        for parameter in module.parameters():
            if parameter.requires_grad:
                parameter.requires_grad_(False)
                frozen += parameter.numel()
        if not isinstance(module, _Direct):
            freeze_batchnorm(module)
    return frozen


class _Direct:
    """The parameters a module holds itself (not those of its children)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.module.parameters(recurse=False)


def lr_groups(
    model: nn.Module, pretrained: Iterable[nn.Module], lr_mult: float
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the parameters of ``pretrained`` with ``lr_mult``, the rest of
    ``model`` at the base learning rate; frozen parameters left out, empty groups dropped."""
    chosen: dict[int, nn.Parameter] = {}
    for module in pretrained:
        for parameter in module.parameters():
            chosen[id(parameter)] = parameter
    slow = [p for p in chosen.values() if p.requires_grad]
    rest = [p for p in model.parameters() if id(p) not in chosen and p.requires_grad]
    groups = [
        {"params": slow, "lr_mult": float(lr_mult), "name": "pretrained"},
        {"params": rest, "lr_mult": 1.0, "name": "rest"},
    ]
    return [g for g in groups if g["params"]]


def freeze_unused(module: nn.Module, run: Callable[[], torch.Tensor]) -> int:
    """Run ``run()`` (a forward pass of ``module``), back-propagate, and freeze the parameters
    that got no gradient (e.g. layers after the feature map taken), so that DDP does not wait
    for them. Returns how many were frozen."""
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            out = run()
            out.float().sum().backward()
    finally:
        module.train(was_training)
    unused = 0
    for parameter in module.parameters():
        if parameter.requires_grad and parameter.grad is None:
            parameter.requires_grad_(False)
            unused += 1
        parameter.grad = None
    return unused
