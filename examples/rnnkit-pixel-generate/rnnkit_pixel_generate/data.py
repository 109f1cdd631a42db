"""The ``levels`` data kind and its source ``digit-levels``: scikit-learn's bundled 8x8 digits
(values 0..16) quantised to a few intensity levels, fixed train/val/test split.

``levels`` is this plugin's own kind, so the core checks its spec type (``LevelSpec``) but not its
items: an item is one ``H,W`` int64 tensor of level indices ``0..levels-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from rnnkit_pixel_generate.config import MAX_VALUE
from rnnvision_kit import DataBundle, DataSpec, RunConfig


@dataclass(frozen=True)
class LevelSpec(DataSpec):
    """Spec of ``levels`` data: one channel of ``levels`` discrete intensities. ``class_names``
    name the levels; ``mean``/``std`` are 0 and 1 (the model reads levels one-hot, unnormalised).
    Defining the class registers the kind, so checkpoints read it back with ``DataSpec.from_dict``."""

    levels: int

    kind: ClassVar[str] = "levels"


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
    """Digits quantised to ``data.levels`` levels, split by ``data.val_fraction`` and
    ``data.test_fraction`` (checked by the config); the split depends on nothing else."""
    from sklearn.datasets import load_digits

    d = config.data
    images = torch.from_numpy(quantise(load_digits().images, d.levels))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(images)))
    n_test = round(len(images) * d.test_fraction)
    n_val = round(len(images) * d.val_fraction)
    test, val, train = (
        LevelImages(images[index])
        for index in (order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :])
    )
    _, height, width = images.shape
    spec = LevelSpec(
        class_names=tuple(f"level {i}" for i in range(d.levels)),
        channels=1,
        height=height,
        width=width,
        mean=(0.0,),
        std=(1.0,),
        levels=d.levels,
    )
    return DataBundle(train, val, test, spec)
