"""``rnnkit check-data`` for seg-refine: read every clip once (bad files skipped and listed),
count clips, frames and the pixels of each class per split; say how mask values became class ids
(and suggest ``data.mask_values`` where most classes are empty)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from rnnkit_segrefine.data import describe_masks
from rnnvision_kit import DataCheck, DataError, RunConfig

SPLITS = ("train", "val", "test")
HEADERS = ["kind", "name", "detail"]
MANY_CLASSES = 32  # beyond this, classes without pixels get no row of their own


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
    """Build the data with ``data.on_error=skip`` (and no augmentation) and tabulate it;
    unusable data is a note."""
    config = replace(config, data=replace(config.data, on_error="skip", augment=False))
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
        if totals[k] or len(names) <= MANY_CLASSES:  # many classes: the empty ones in a note
            rows.append(("class", name, f"{int(totals[k]):,} pixels ({totals[k] / pixels:.1%})"))
    rows += [("skipped", path, reason) for path, reason in bundle.skipped]
    notes = [f"{len(bundle.skipped)} file(s) skipped" if bundle.skipped else "no bad files"]
    notes.append(describe_masks(bundle.train))
    empty = [name for k, name in enumerate(names) if totals[k] == 0]
    if empty:
        notes.append(f"classes with no pixels: {', '.join(_short(empty))}")
    hint = _mapping_hint(config, totals)
    if hint:
        notes.append(hint)
    return DataCheck(HEADERS, rows, notes, usable=len(bundle.train) > 0)


def _short(names: list[str], limit: int = 12) -> list[str]:
    return names if len(names) <= limit else [*names[:limit], f"... ({len(names)} in all)"]


def _mapping_hint(config: RunConfig, totals: torch.Tensor) -> str | None:
    """Where at least half of 3+ classes are empty and masks are read as stored: the mapping of
    the ids that occur onto 0..N-1, to pass as ``data.mask_values``."""
    d = config.data
    present = [k for k in range(len(totals)) if totals[k] > 0]
    if d.mask_values is not None or d.binary or len(totals) < 3 or len(present) < 1:
        return None
    if len(present) > len(totals) / 2 or len(present) > 16 or present == list(range(len(present))):
        return None
    table = ", ".join(f"{v}: {i}" for i, v in enumerate(present))
    return (
        f"only {len(present)} of {len(totals)} class ids occur in the masks; to read them as "
        f"0..{len(present) - 1}: --set 'data.mask_values={{{table}}}'"
    )
