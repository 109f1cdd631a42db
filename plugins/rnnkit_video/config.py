"""Settings of video-action: ``data.*`` (clips, sampling, splits) and ``model.*`` (encoder, head)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rnnvision_kit import DataConfig
from rnnvision_kit.errors import ConfigError

MOVING_DIGITS_VIDEOS = (240, 15, 20)  # train, val, test videos per class by default


@dataclass
class VideoDataConfig(DataConfig):
    source: str = "moving-digits"
    batch_size: int = 32
    num_frames: int = 5  # frames per clip (T)
    stride: int = 3  # take every stride-th frame; a clip spans (num_frames - 1) * stride + 1
    sampling: Literal["random", "segment"] = "random"  # training: random clip | TSN segments
    test_clips: int = 2  # val/test: average the logits of N uniform clips per video
    size: int = 32  # frames are resized to size x size
    short_policy: Literal["loop", "pad"] = "loop"  # videos shorter than a clip
    fold: int = 1  # ucf101: split files trainlist0N/testlist0N
    val_fraction: float = 0.1  # held out of train where a source has no val split
    test_fraction: float = 0.2  # held out where a source has no test split
    cache_mb: int = 512  # per split: decoded frames of short videos kept in memory (0: off)
    # moving-digits videos per class: [train, val, test], or [n] for (n, n//4, n//3)
    videos_per_class: list[int] = field(default_factory=lambda: list(MOVING_DIGITS_VIDEOS))

    def validate(self) -> None:
        for key in ("num_frames", "stride", "test_clips", "fold"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key}: must be >= 1 (got {getattr(self, key)})")
        if not 8 <= self.size <= 1024:
            raise ConfigError(f"data.size: must be in [8, 1024] (got {self.size})")
        for key in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"data.{key}: must be in [0, 1) (got {getattr(self, key)})")
        if self.cache_mb < 0:
            raise ConfigError(f"data.cache_mb: must be >= 0 (got {self.cache_mb})")
        counts = self.videos_per_class
        if len(counts) not in (1, 3) or min(counts) < 1:
            raise ConfigError(
                f"data.videos_per_class: expected [n] or [train, val, test], all >= 1 (got {counts})"
            )


@dataclass
class VideoModelConfig:
    backbone: str = (
        "small-cnn"  # a registered frame encoder: small-cnn, resnet18, mobilenet_v3_small
    )
    head: str = "gru"  # a registered sequence head: gru, lstm, rnn, mean (order-less baseline)
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    pooling: Literal["last", "mean", "attention"] = "last"
    dropout: float = 0.0
    feature_dim: int | None = 128  # encoder output size; None: the backbone's own (512, 576)
    backbone_weights: str | None = None  # a local state dict file (no downloads)

    def validate(self) -> None:
        for key in ("hidden_size", "num_layers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key}: must be >= 1 (got {getattr(self, key)})")
        if self.feature_dim is not None and self.feature_dim < 1:
            raise ConfigError(f"model.feature_dim: must be >= 1 (got {self.feature_dim})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout: must be in [0, 1) (got {self.dropout})")
