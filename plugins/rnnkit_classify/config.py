"""Settings of image-classify: ``data.*`` (what its image sources read) and ``model.*``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rnnvision_kit import DataConfig, setting


@dataclass
class ClassifyDataConfig(DataConfig):
    source: str = setting("digits", nonempty=True)
    batch_size: int = setting(64, ge=1)
    image_size: int | None = setting(None, ge=1)  # square size (default: digits 16, folders 28)
    channels: int | None = setting(None, ge=1, le=3)  # imagefolder: 1 (gray) or 3 (RGB); 1
    val_fraction: float = setting(0.1, ge=0, lt=1)  # digits/imagefolder without a val/ folder
    test_fraction: float = setting(0.2, gt=0, lt=1)  # digits/imagefolder without a test/ folder
    augment: bool = True  # random shifts of up to 1/8 of the image while training


@dataclass
class ClassifyModelConfig:
    head: str = "gru"  # a registered head: gru, lstm, rnn (or a plugin's)
    hidden_size: int = setting(128, ge=1)
    num_layers: int = setting(1, ge=1)
    bidirectional: bool = True
    pooling: Literal["last", "mean", "attention"] = "mean"
    scan: Literal["rows", "columns", "both"] = "both"  # both: rows and columns, logits summed
    dropout: float = setting(0.1, ge=0, lt=1)
