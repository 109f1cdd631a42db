"""Per-channel mean and std of a bounded, deterministic sample of a training set: the input
normalisation of a model without pretrained weights (issue 20: "the data's", really)."""

from __future__ import annotations

from collections.abc import Sized
from typing import Any, cast

import torch

from rnnvision_kit.errors import RnnkitError
from rnnvision_kit.progress import track

STAT_ITEMS = 64  # training items read for the statistics, spread evenly over the split


def sample_indices(count: int, limit: int = STAT_ITEMS) -> list[int]:
    """Up to ``limit`` indices spread evenly over ``range(count)`` (all of them when fewer)."""
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def channel_statistics(
    dataset: Any, limit: int = STAT_ITEMS
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Mean and std per channel of the inputs of up to ``limit`` items of a map-style data set
    (each item's first element: ``C,H,W``, ``T,C,H,W`` or ``N,T,C,H,W``; channels third from
    last), rounded to 6 digits; items that cannot be read are left out. None when none was
    read. The std is at least 1e-3 (a constant channel). Long reads show progress (a bar on a
    terminal, a line every 30 s otherwise)."""
    total = torch.zeros(0, dtype=torch.float64)
    squares = torch.zeros(0, dtype=torch.float64)
    pixels = 0
    indices = sample_indices(len(cast(Sized, dataset)), limit)
    for index in track(indices, len(indices), "normalisation statistics", "item"):
        try:
            item = dataset[index]
        except RnnkitError:  # an unreadable file: its data set lists it as skipped
            continue
        x = torch.as_tensor(item[0] if isinstance(item, (tuple, list)) else item)
        x = x.to(torch.float64).movedim(-3, 0).reshape(x.shape[-3], -1)
        if total.numel() == 0:
            total = torch.zeros(x.shape[0], dtype=torch.float64)
            squares = torch.zeros(x.shape[0], dtype=torch.float64)
        total += x.sum(dim=1)
        squares += (x * x).sum(dim=1)
        pixels += x.shape[1]
    if pixels == 0:
        return None
    mean = total / pixels
    std = (squares / pixels - mean * mean).clamp(min=0).sqrt().clamp(min=1e-3)
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)
