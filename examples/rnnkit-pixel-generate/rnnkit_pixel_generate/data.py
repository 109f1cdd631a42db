"""The ``digit-levels`` data source: scikit-learn's bundled 8x8 digits (values 0..16) quantised to
a few intensity levels, items ``H,W`` int64 tensors of level indices, fixed train/val/test split."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from rnnvision_kit import ConfigError, DataBundle, DataSpec, RunConfig

MAX_VALUE = 16  # digits' pixel values are 0..16


class LevelImages(Dataset):
    """Images of level indices ``N,H,W`` (int64); an item is one ``H,W`` image."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def quantise(values: np.ndarray, levels: int) -> np.ndarray:
    """Map values 0..16 to ``levels`` equally wide bins 0..levels-1."""
    return np.minimum(values.astype(np.int64) * levels // (MAX_VALUE + 1), levels - 1)


def digit_levels(config: RunConfig) -> DataBundle:
    """Digits quantised to ``data.levels`` levels; the split depends on nothing but the fractions."""
    from sklearn.datasets import load_digits

    d = config.data
    if not 2 <= d.levels <= MAX_VALUE + 1:
        raise ConfigError(f"data.levels: must be between 2 and {MAX_VALUE + 1} (got {d.levels})")
    if min(d.val_fraction, d.test_fraction) <= 0 or d.val_fraction + d.test_fraction >= 1:
        raise ConfigError(
            f"data.val_fraction={d.val_fraction} and data.test_fraction={d.test_fraction} must be "
            "> 0 and sum to less than 1"
        )
    images = torch.from_numpy(quantise(load_digits().images, d.levels))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(images)))
    n_test = round(len(images) * d.test_fraction)
    n_val = round(len(images) * d.val_fraction)
    test, val, train = (
        LevelImages(images[index])
        for index in (order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :])
    )
    _, height, width = images.shape
    spec = DataSpec(
        [f"level {i}" for i in range(d.levels)],
        {"height": height, "width": width, "levels": d.levels},
    )
    return DataBundle(train, val, test, spec)
