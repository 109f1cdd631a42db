"""Settings of pixel-generate: the data source's (``data.*``) and the model's (``model.*``), each
checked where it is declared (``setting(...)``, ``Rule``) when a run is configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rnnvision_kit import DataConfig, Rule, setting

MAX_VALUE = 16  # the digits' pixel values are 0..16, so at most 17 levels


@dataclass
class PixelDataConfig(DataConfig):
    source: str = setting("digit-levels", nonempty=True)
    batch_size: int = setting(32, ge=1)
    levels: int = setting(4, ge=2, le=MAX_VALUE + 1)  # intensity levels of 0..16; 2 binarises
    val_fraction: float = setting(0.1, gt=0, lt=1)
    test_fraction: float = setting(0.2, gt=0, lt=1)

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "test_fraction",
            "val_fraction + test_fraction must be below 1 (the rest is the train split)",
            lambda d: d.val_fraction + d.test_fraction < 1,
        ),
    )


@dataclass
class PixelModelConfig:
    hidden_size: int = setting(128, ge=1)  # LSTM state over rows
    channels: int = setting(32, ge=1)  # features per pixel
    num_layers: int = setting(1, ge=1)
    samples: int = setting(64, ge=1)  # images sampled into samples.png after training (a grid)
