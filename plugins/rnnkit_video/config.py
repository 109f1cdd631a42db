"""Settings of video-action: ``data.*`` (clips, sampling, splits) and ``model.*`` (encoder, head).

Value checks are declared with ``setting(...)``; ``rnnvision_kit`` checks them when a command
builds the task (``data.size: must be in [8, 1024] (got 4)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from rnnvision_kit import (
    DataConfig,
    HeadConfig,
    Rule,
    RunConfig,
    TrainConfig,
    setting,
    split_fractions_rule,
)

MOVING_DIGITS_VIDEOS = (240, 15, 20)  # train, val, test videos per class by default


@dataclass
class VideoDataConfig(DataConfig):
    source: str = setting("moving-digits", nonempty=True)
    batch_size: int = setting(32, ge=1)
    num_frames: int = setting(5, ge=1)  # frames per clip (T)
    # take every stride-th frame; a clip spans (num_frames - 1) * stride + 1 frames
    stride: int = setting(3, ge=1)
    sampling: Literal["random", "segment"] = "random"  # training: random clip | TSN segments
    test_clips: int = setting(2, ge=1)  # val/test: average the logits of N uniform clips per video
    size: int = setting(32, ge=8, le=1024)  # frames are resized to size x size
    short_policy: Literal["loop", "pad"] = "loop"  # videos shorter than a clip
    fold: int = setting(1, ge=1)  # ucf101: split files trainlist0N/testlist0N
    val_fraction: float = setting(0.1, ge=0, lt=1)  # held out of train where a source has no val
    test_fraction: float = setting(0.2, ge=0, lt=1)  # held out where a source has no test split
    # decoded frames at training size on disk, read from the second epoch on: true (the rnnkit
    # cache folder), false (off), or a folder
    frame_cache: bool | str = True
    frame_cache_gb: float = setting(10.0, gt=0)  # size bound of the frame cache folder
    # --- augmentation of training clips (one draw for all frames of a clip)
    augment: bool = False
    crop_scale: list[float] = setting(default_factory=lambda: [0.5, 1.0], length=(2,), gt=0, le=1)
    hflip: bool = False  # horizontal flip with probability 0.5 (off: left/right can be the class)
    jitter: float = setting(0.2, ge=0)  # colour jitter strength (brightness, contrast, saturation)
    # moving-digits videos per class: [train, val, test], or [n] for (n, n//4, n//3)
    videos_per_class: list[int] = setting(
        default_factory=lambda: list(MOVING_DIGITS_VIDEOS), ge=1, length=(1, 3)
    )

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "crop_scale",
            "needs [min, max] with min <= max",
            lambda d: d.crop_scale[0] <= d.crop_scale[1],
        ),
        Rule(
            "frame_cache",
            "is empty (true, false or a folder)",
            lambda d: d.frame_cache != "",
        ),
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
    # frame normalisation; None: the weights' own (model.weights), else the data's
    mean: list[float] | None = setting(None, length=(1, 3))
    std: list[float] | None = setting(None, length=(1, 3), gt=0)
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


def defaults() -> RunConfig:
    """video-action's defaults (registered as ``config=``: no torch import)."""
    return RunConfig(
        task="video-action",
        data=VideoDataConfig(),
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
