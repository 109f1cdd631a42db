"""Frame encoders: ``B,C,H,W`` images in, ``B,F`` feature vectors out (``out_features`` = F).

``small-cnn`` is a few conv-bn-relu-pool blocks that keep a coarse spatial grid (position matters
for motion), fast on a CPU. ``resnet18`` and ``mobilenet_v3_small`` are torchvision's, built with
``weights=None``; pretrained weights come only from a local file the user names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnvision_kit.errors import ConfigError

__all__ = [
    "ENCODERS",
    "FrameEncoder",
    "SmallCNN",
    "build_encoder",
    "load_weights",
    "mobilenet_v3_small",
    "resnet18",
    "small_cnn",
]


class SmallCNN(nn.Module):
    """Conv-BN-ReLU-MaxPool blocks, an adaptive average pool to a ``grid x grid`` map, a linear layer.

    Flattening the grid (instead of global pooling) keeps where things are in the frame.
    """

    def __init__(
        self,
        in_channels: int = 3,
        feature_dim: int = 128,
        widths: Sequence[int] = (8, 16, 32),
        grid: int = 4,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        layers.append(nn.AdaptiveAvgPool2d(grid))
        self.features = nn.Sequential(*layers)
        self.project = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * grid * grid, feature_dim), nn.ReLU(inplace=True)
        )
        self.out_features = feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(images))


class FrameEncoder(nn.Module):
    """A trunk giving ``B,native`` features, optionally projected to ``feature_dim``."""

    def __init__(self, trunk: nn.Module, native: int, feature_dim: int | None = None) -> None:
        super().__init__()
        self.trunk = trunk
        self.project = nn.Linear(native, feature_dim) if feature_dim else nn.Identity()
        self.out_features = feature_dim or native

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(torch.flatten(self.trunk(images), 1))


def load_weights(
    module: nn.Module, path: str | Path, name: str, ignore: Sequence[str] = ()
) -> None:
    """Load a local state dict (``torch.load(weights_only=True)``) into ``module``.

    Accepts a plain state dict or one under ``"state_dict"``/``"model"``, with or without a
    ``module.`` prefix. Keys starting with one of ``ignore`` (a classifier the encoder drops) may
    be present or absent; any other mismatch raises a ConfigError naming the file.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{file}: backbone weights file not found (model.backbone_weights)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and unpickler errors of all kinds
        reason = " ".join(str(error).split())[:100]
        raise ConfigError(f"{file}: not a PyTorch weights file ({reason})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ConfigError(f"{file}: not a state dict of tensors (model.backbone_weights)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(tuple(ignore))}
    expected = {k for k in module.state_dict() if not k.startswith(tuple(ignore))}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        detail = ", ".join(
            f"{len(keys)} {what} key(s), e.g. {keys[0]!r}"
            for what, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        )
        raise ConfigError(f"{file}: not {name} weights ({detail})")
    try:
        module.load_state_dict(state, strict=False)
    except RuntimeError as error:
        first = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), "")
        raise ConfigError(f"{file}: {name} weights of other shapes ({first[:120]})") from None


def small_cnn(
    feature_dim: int | None = 128, weights: str | None = None, in_channels: int = 3
) -> SmallCNN:
    """The CPU default: three conv blocks, a 4x4 grid, a linear layer to ``feature_dim``."""
    encoder = SmallCNN(in_channels, feature_dim or 128)
    if weights:
        load_weights(encoder, weights, "small-cnn")
    return encoder


def resnet18(
    feature_dim: int | None = None, weights: str | None = None, in_channels: int = 3
) -> FrameEncoder:
    """torchvision's ResNet-18 without its classifier (512 features), ``weights=None`` or a file."""
    from torchvision.models import resnet18 as build

    _check_rgb(in_channels, "resnet18")
    trunk = build(weights=None)
    if weights:
        load_weights(trunk, weights, "resnet18", ignore=("fc.",))
    native = trunk.fc.in_features
    trunk.fc = nn.Identity()
    return FrameEncoder(trunk, native, feature_dim)


def mobilenet_v3_small(
    feature_dim: int | None = None, weights: str | None = None, in_channels: int = 3
) -> FrameEncoder:
    """torchvision's MobileNetV3-Small features and pooling (576 features), no classifier."""
    from torchvision.models import mobilenet_v3_small as build

    _check_rgb(in_channels, "mobilenet_v3_small")
    full = build(weights=None)
    if weights:
        load_weights(full, weights, "mobilenet_v3_small", ignore=("classifier.",))
    native = full.classifier[0].in_features
    trunk = nn.Sequential(full.features, full.avgpool)
    return FrameEncoder(trunk, native, feature_dim)


def _check_rgb(in_channels: int, name: str) -> None:
    if in_channels != 3:
        raise ConfigError(f"backbone {name} takes 3-channel frames (got {in_channels})")


ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "small-cnn": small_cnn,
    "resnet18": resnet18,
    "mobilenet_v3_small": mobilenet_v3_small,
}


def build_encoder(name: str, **options: Any) -> nn.Module:
    """Build a frame encoder of :data:`ENCODERS` by name."""
    if name not in ENCODERS:
        raise ConfigError(f"unknown frame encoder {name!r} (known: {', '.join(ENCODERS)})")
    return ENCODERS[name](**options)
