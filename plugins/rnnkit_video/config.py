"""Settings of video-action: ``data.*`` (the core's ``VideoDataConfig``: clips, sampling, splits)
and ``model.*`` (encoder, head).

Value checks are declared with ``setting(...)``; ``rnnvision_kit`` checks them when a command
builds the task (``data.size: must be in [8, 1024] (got 4)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from rnnvision_kit import (
    HeadConfig,
    Rule,
    RunConfig,
    TrainConfig,
    setting,
    split_fractions_rule,
)
from rnnvision_kit.data import VideoDataConfig


@dataclass
class VideoActionDataConfig(VideoDataConfig):
    """video-action's ``data.*``: the settings video sources read (``VideoDataConfig``), with
    moving-digits as the default source."""

    source: str = setting("moving-digits", nonempty=True)  # a registered source of kind video
    batch_size: int = setting(32, ge=1)  # training clips per step (per process)

    rules: ClassVar[tuple[Rule, ...]] = (
        *VideoDataConfig.rules,
        split_fractions_rule("videos", skip=("moving-digits", "ucf101")),
    )


@dataclass
class VideoModelConfig(HeadConfig):
    """The head (``model.head``, ``model.layer.*``, ... from ``HeadConfig``) and the frame encoder."""

    # a registered frame encoder (small-cnn, resnet18, mobilenet_v3_small), or any torchvision
    # or timm model as tv:NAME / timm:NAME (rnnkit backbones PATTERN lists them)
    backbone: str = setting("small-cnn", nonempty=True)
    # encoder output size; None: the backbone's own (512, 576)
    feature_dim: int | None = setting(128, ge=1)
    backbone_weights: str | None = None  # a local state dict file of the backbone
    # pretrained weights by name: torchvision DEFAULT, IMAGENET1K_V2, ...; timm pretrained or a
    # tag (a1_in1k, ...); read from TORCH_HOME / the HF cache, downloaded there when online
    weights: str | None = None
    # frame normalisation; None: the weights' own (model.weights), else ImageNet's statistics,
    # or with data_stats the training data's (up to 64 clips; measured on moving-digits: lru
    # 0.915 with the data's against 0.995 with ImageNet's, the other layers alike)
    mean: list[float] | None = setting(None, length=(1, 3))
    std: list[float] | None = setting(None, length=(1, 3), gt=0)
    data_stats: bool = False
    # --- fine-tuning: freeze the encoder's first N stages (0: none) or all of it; a learning
    # rate multiplier for the encoder (its pretrained part); BatchNorm statistics kept fixed
    freeze: int | Literal["all"] = setting(0, ge=0)
    pretrained_lr: float = setting(1.0, gt=0)
    freeze_bn: bool = False

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "weights",
            "model.backbone_weights is set too; set only one of them",
            lambda m: not (m.weights and m.backbone_weights),
        ),
    )


# video-action's run config: its defaults, and what the contexts of a video-action run hold
VideoActionConfig = RunConfig[VideoModelConfig, VideoActionDataConfig]


def defaults() -> VideoActionConfig:
    """video-action's defaults (registered as ``config=``: no torch import)."""
    return RunConfig(
        task="video-action",
        data=VideoActionDataConfig(),
        model=VideoModelConfig(),
        train=TrainConfig(
            epochs=12,
            optimizer="adam",
            lr=3e-3,
            weight_decay=0.0,
            schedule="cosine",
            warmup_epochs=1,
            monitor="val/acc",
            mode="max",
            # One thread: this small model's ops are too short to share out, and on a busy
            # 2-core machine two threads ran 17x slower per step; null: torch's default.
            threads=1,
        ),
    )
