"""``rnnkit check-data`` for seg-refine: read every clip once (bad files skipped and listed),
count clips, frames and the pixels of each class per split."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from rnnvision_kit import DataCheck, DataError, RunConfig

SPLITS = ("train", "val", "test")
HEADERS = ["kind", "name", "detail"]


def _pixel_counts(dataset: Any, num_classes: int) -> tuple[int, int, torch.Tensor]:
    """Clips, frames and per-class pixel counts (values outside the classes, e.g. an ignore
    index, are left out)."""
    counts = torch.zeros(num_classes, dtype=torch.int64)
    frames = 0
    for index in range(len(dataset)):
        masks = dataset[index][1]
        frames += masks.shape[0]
        kept = masks[(masks >= 0) & (masks < num_classes)]
        counts += torch.bincount(kept.flatten(), minlength=num_classes)
    return len(dataset), frames, counts


def check_segmentation(factory: Any, config: RunConfig) -> DataCheck:
    """Build the data with ``data.on_error=skip`` and tabulate it; unusable data is a note."""
    config = replace(config, data=replace(config.data, on_error="skip"))
    try:
        bundle = factory(config)
    except DataError as error:
        return DataCheck(HEADERS, [], [str(error), "no usable clip: nothing to train on"], False)
    names = bundle.spec.class_names
    rows: list[tuple[str, str, str]] = []
    totals = torch.zeros(len(names), dtype=torch.int64)
    for split in SPLITS:
        clips, frames, counts = _pixel_counts(getattr(bundle, split), len(names))
        totals += counts
        rows.append(("split", split, f"{clips} clips, {frames} frames"))
    pixels = max(int(totals.sum()), 1)
    for k, name in enumerate(names):
        rows.append(("class", name, f"{int(totals[k]):,} pixels ({totals[k] / pixels:.1%})"))
    rows += [("skipped", path, reason) for path, reason in bundle.skipped]
    notes = [f"{len(bundle.skipped)} file(s) skipped" if bundle.skipped else "no bad files"]
    empty = [name for k, name in enumerate(names) if totals[k] == 0]
    if empty:
        notes.append(f"classes with no pixels: {', '.join(empty)}")
    return DataCheck(HEADERS, rows, notes, usable=len(bundle.train) > 0)
