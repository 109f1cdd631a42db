"""Settings of video-action: ``data.*`` (clips, sampling, splits) and ``model.*`` (encoder, head).

Value checks are declared with ``setting(...)``; ``rnnvision_kit`` checks them when a command
builds the task (``data.size: must be in [8, 1024] (got 4)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rnnvision_kit import DataConfig, setting

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
    # per split: decoded frames of short videos kept in memory (0: off)
    cache_mb: int = setting(512, ge=0)
    # moving-digits videos per class: [train, val, test], or [n] for (n, n//4, n//3)
    videos_per_class: list[int] = setting(
        default_factory=lambda: list(MOVING_DIGITS_VIDEOS), ge=1, length=(1, 3)
    )


@dataclass
class VideoModelConfig:
    # a registered frame encoder: small-cnn, resnet18, mobilenet_v3_small
    backbone: str = setting("small-cnn", nonempty=True)
    # a registered sequence head: gru, lstm, rnn, mean (order-less baseline)
    head: str = setting("gru", nonempty=True)
    hidden_size: int = setting(128, ge=1)
    num_layers: int = setting(1, ge=1)
    bidirectional: bool = False
    pooling: Literal["last", "mean", "attention"] = "last"
    dropout: float = setting(0.0, ge=0, lt=1)
    # encoder output size; None: the backbone's own (512, 576)
    feature_dim: int | None = setting(128, ge=1)
    backbone_weights: str | None = None  # a local state dict file (no downloads)
