"""``rnnkit check-data`` for seg-refine: read every clip once (bad files skipped and listed),
count clips, frames and the pixels of each class per split; say how mask values became class ids
(and suggest ``data.mask_values`` where most classes are empty).

Reading every clip decodes every frame image and every mask in full, so ``--deep`` has nothing
more to decode (seg-refine reads image files, not video files): a note says so. A file that passes
the data set's construction scan but fails to decode (a truncated JPEG) is a row, not an error."""

from __future__ import annotations

from collections.abc import Sequence, Sized
from dataclasses import replace
from typing import Any, cast

import torch
from torch.utils.data import Dataset

from rnnkit_segrefine.data import AugmentedClips, CarvedSplit, SegRunConfig, describe_masks
from rnnvision_kit import DataBundle, DataCheck, DataError, Progress

SPLITS = ("train", "val", "test")
HEADERS = ["kind", "name", "detail"]
NAMED = 50  # videos (or images) a 'carved' row names
MANY_CLASSES = 32  # beyond this, classes without pixels get no row of their own


def _pixel_counts(
    dataset: Dataset, num_classes: int, unreadable: dict[str, str], progress: Progress
) -> tuple[int, int, torch.Tensor]:
    """Clips read, frames and per-class pixel counts (values outside the classes, e.g. an
    ignore index, are left out); a clip that fails to decode adds its file to ``unreadable``.
    Each clip read counts one on ``progress``."""
    counts = torch.zeros(num_classes, dtype=torch.int64)
    frames = clips = 0
    for index in range(len(cast(Sized, dataset))):  # map-style (torch's Dataset declares no len)
        progress.update()
        try:
            masks = dataset[index][1]
        except DataError as error:
            path, _, why = str(error).partition(": ")
            unreadable.setdefault(path, why or path)
            continue
        clips += 1
        frames += masks.shape[0]
        kept = masks[(masks >= 0) & (masks < num_classes)]
        counts += torch.bincount(kept.flatten(), minlength=num_classes)
    return clips, frames, counts


def check_segmentation(factory: Any, config: SegRunConfig, *, deep: bool = False) -> DataCheck:
    """Build the data with ``data.on_error=skip`` (and no augmentation) and tabulate it;
    unusable data is a note. Every frame and mask is decoded either way; ``deep`` adds a note
    saying so."""
    config = replace(config, data=replace(config.data, on_error="skip", augment=False))
    try:
        bundle = factory(config)
    except DataError as error:
        return DataCheck(HEADERS, [], [str(error), "no usable clip: nothing to train on"], False)
    names = bundle.spec.class_names
    rows: list[Sequence[str]] = []
    totals = torch.zeros(len(names), dtype=torch.int64)
    unreadable: dict[str, str] = {}
    read: dict[str, int] = {}
    total = sum(len(cast(Sized, getattr(bundle, split))) for split in SPLITS)
    with Progress(total, "reading clips", "clip") as progress:
        for split in SPLITS:
            dataset = getattr(bundle, split)
            clips, frames, counts = _pixel_counts(dataset, len(names), unreadable, progress)
            totals += counts
            read[split] = clips
            origin = (bundle.origins or {}).get(split)
            detail = f"{clips} clips, {frames} frames" + (f": {origin}" if origin else "")
            rows.append(("split", split, detail))
    rows += carved_rows(bundle)
    pixels = max(int(totals.sum()), 1)
    for k, name in enumerate(names):
        if totals[k] or len(names) <= MANY_CLASSES:  # many classes: the empty ones in a note
            rows.append(("class", name, f"{int(totals[k]):,} pixels ({totals[k] / pixels:.1%})"))
    rows += [("skipped", path, reason) for path, reason in bundle.skipped]
    rows += [("unreadable", path, reason) for path, reason in unreadable.items()]
    notes = [f"{len(bundle.skipped)} file(s) skipped"] if bundle.skipped else []
    if unreadable:
        notes.append(
            f"{len(unreadable)} file(s) pass the scan but fail to decode (the clips holding them "
            "are left out of these counts): replace or remove them"
        )
    if not notes:
        notes.append("no bad files")
    if any(row[0] == "carved" for row in rows):
        notes.append(
            "no split folder or split file for every split: the 'carved' rows name what the "
            "fixed split seed put in each (the 'split' rows say where each split comes from)"
        )
    if deep:
        notes.append(
            "--deep: every frame image and mask was decoded in full (check-data reads every "
            "clip; seg-refine reads image files, not video files)"
        )
    notes.append(describe_masks(bundle.train))
    empty = [name for k, name in enumerate(names) if totals[k] == 0]
    if empty:
        notes.append(f"classes with no pixels: {', '.join(_short(empty))}")
    hint = _mapping_hint(config, totals)
    if hint:
        notes.append(hint)
    if read["train"] == 0:
        notes.append("no readable training clip: nothing to train on")
    return DataCheck(HEADERS, rows, notes, usable=read["train"] > 0)


def carved_rows(bundle: DataBundle) -> list[Sequence[str]]:
    """For each split carved by the seeded split (no split folder or split file), a row naming
    the videos (or images) it took."""
    rows: list[Sequence[str]] = []
    for split in SPLITS:
        dataset = getattr(bundle, split)
        if isinstance(dataset, AugmentedClips):
            dataset = dataset.clips
        if isinstance(dataset, CarvedSplit):
            shown = ", ".join(dataset.groups[:NAMED])
            if len(dataset.groups) > NAMED:
                more = len(dataset.groups) - NAMED
                shown += f", and {more} more (a run's splits.json lists every clip)"
            rows.append(("carved", split, f"{len(dataset.groups)}: {shown}"))
    return rows


def _short(names: list[str], limit: int = 12) -> list[str]:
    return names if len(names) <= limit else [*names[:limit], f"... ({len(names)} in all)"]


def _mapping_hint(config: SegRunConfig, totals: torch.Tensor) -> str | None:
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
