"""The data source ``moving-mnist`` of kind ``frames``: items ``(frames T,C,H,W float32 in
[0, 1], index)``. Validation and test sets are generated once into the rnnkit cache as uint8
arrays (fixed seeds, so every run sees the same sequences); training sequences are new every
epoch (a generator seeded by ``seed``, the epoch and the index), or fixed with
``data.fixed_train``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from rnnkit_videopredict.config import PredictConfig, PredictDataConfig
from rnnkit_videopredict.moving_mnist import generate, mnist_digits, sklearn_digits
from rnnkit_videopredict.spec import FramesSpec
from rnnvision_kit import DataBundle
from rnnvision_kit.data import generate_once

VERSION = 1  # of the generator, in the cache key
SEEDS = {"train": 0, "val": 1, "test": 2}  # fixed seeds of the generated splits (train: + seed)
ARRAY = "sequences.npy"


def as_frames(sequence: np.ndarray, channels: int) -> torch.Tensor:
    """``T,H,W`` uint8 -> ``T,C,H,W`` float32 in [0, 1] (grey repeated for RGB)."""
    frames = torch.from_numpy(np.array(sequence, dtype=np.uint8)).float().div_(255).unsqueeze(1)
    return frames.expand(-1, channels, -1, -1).contiguous() if channels > 1 else frames


class StoredSequences(Dataset):
    """Sequences of a uint8 ``N,T,H,W`` array (memory-mapped from the cache)."""

    def __init__(self, array: np.ndarray, channels: int) -> None:
        self.array, self.channels = array, channels

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return as_frames(self.array[index], self.channels), index


class FreshSequences(Dataset):
    """``count`` sequences generated on access, new each epoch: item ``i`` of epoch ``e`` comes
    from a generator seeded by ``(seed, e, i)``, so workers and resumed runs agree."""

    def __init__(
        self,
        digits: np.ndarray,
        count: int,
        frames: int,
        size: int,
        per: int,
        channels: int,
        seed: int,
    ) -> None:
        self.digits, self.count, self.frames, self.size = digits, count, frames, size
        self.per, self.channels, self.seed, self.epoch = per, channels, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rng = np.random.default_rng((VERSION, self.seed, self.epoch, index))
        sequence = generate(rng, self.digits, 1, self.frames, self.size, self.per)[0]
        return as_frames(sequence, self.channels), index


def _digit_source(d: PredictDataConfig) -> tuple[str, Path | None]:
    """(cache key part, MNIST folder or None for load_digits)."""
    if not d.path:
        return "sklearn", None
    folder = d.require_path("../shared/data/mnist").resolve()
    return "mnist-" + hashlib.sha1(str(folder).encode()).hexdigest()[:10], folder


def digits_of(part: str, folder: Path | None) -> np.ndarray:
    return sklearn_digits(part) if folder is None else mnist_digits(folder, part)


def stored(
    split: str,
    d: PredictDataConfig,
    count: int,
    frames: int,
    seed: int,
    folder: Path | None,
    key: str,
) -> np.ndarray:
    """The generated split, from the cache (generated there once)."""
    name = f"v{VERSION}-{key}-{split}-n{count}-t{frames}-s{d.size}-d{d.digits}-seed{seed}"

    def make(tmp: Path) -> None:
        part = "train" if split == "train" else "eval"
        rng = np.random.default_rng((VERSION, seed))
        array = generate(rng, digits_of(part, folder), count, frames, d.size, d.digits)
        np.save(tmp / ARRAY, array)

    meta = {"split": split, "count": count, "frames": frames, "size": d.size, "seed": seed}
    path = generate_once("moving-mnist", name, make, meta)
    return np.load(path / ARRAY, mmap_mode="r")


def spec_of(d: PredictDataConfig) -> FramesSpec:
    c = d.channels
    return FramesSpec((), c, d.size, d.size, (0.0,) * c, (1.0,) * c, d.context, d.horizon)


def open_moving_mnist(config: PredictConfig) -> DataBundle:
    """Train (fresh per epoch, or fixed), val and test (fixed seeds) Moving MNIST sequences."""
    d = config.data
    key, folder = _digit_source(d)
    length = d.context + d.test_horizon
    digits = "MNIST" if folder else "load_digits"
    train: Dataset
    if d.fixed_train:
        seed = SEEDS["train"] + config.seed
        array = stored("train", d, d.train_sequences, d.sequence_length, seed, folder, key)
        train = StoredSequences(array, d.channels)
        train_origin = f"{d.train_sequences} fixed sequences ({digits} training digits)"
    else:
        train = FreshSequences(
            digits_of("train", folder),
            d.train_sequences,
            d.sequence_length,
            d.size,
            d.digits,
            d.channels,
            config.seed,
        )
        train_origin = f"{d.train_sequences} new sequences per epoch ({digits} training digits)"
    val = stored("val", d, d.val_sequences, length, SEEDS["val"], folder, key)
    test = stored("test", d, d.test_sequences, length, SEEDS["test"], folder, key)
    origin = f"sequences of {length} frames, fixed seed %d ({digits} held-out digits)"
    return DataBundle(
        train,
        StoredSequences(val, d.channels),
        StoredSequences(test, d.channels),
        spec_of(d),
        origins={
            "train": train_origin,
            "val": f"{len(val)} " + origin % SEEDS["val"],
            "test": f"{len(test)} " + origin % SEEDS["test"],
        },
    )
