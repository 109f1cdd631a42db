"""Data sources of video-action: moving-digits (embedded), video folders, UCF101 splits, frame folders.

A source first *lists* labelled videos per split (:func:`list_source`, no file opened), then
:func:`build_bundle` wraps each split in a clip data set read through PyAV. The
training split yields one clip ``(T,3,H,W)`` per video (random clip or TSN segments, augmented
when ``data.augment`` is on); validation and test yield ``data.test_clips`` uniform clips
``(N,T,3,H,W)`` plus the video's index. All splits read through one decoded-frame cache
(``data.frame_cache``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit_video import clips
from rnnvision_kit import DataBundle, DataError, RunConfig, VideoSpec, require_classes
from rnnvision_kit.data import (
    ProbeCache,
    VideoClipDataset,
    VideoSample,
    list_framefolder,
    list_ucf101,
    list_videofolder,
)

SPLITS = ("train", "val", "test")
# The model normalises frames with ImageNet statistics (what torchvision encoders expect).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# list_videofolder / list_framefolder: ``lister(folder, skipped=list)`` -> (samples, classes)
Lister = Callable[..., tuple[list[VideoSample], list[str]]]


@dataclass
class Listing:
    """Labelled videos (files or frame folders) per split, and the class names."""

    splits: dict[str, list[VideoSample]]
    class_names: list[str]
    root: str = ""
    fps: float | None = None  # frame rate of every video, where the source knows one
    # (path, reason) of the files in the class folders that were not taken (never opened)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def stratified_split(
    labels: list[int], fractions: tuple[float, ...], seed: int = 0
) -> list[list[int]]:
    """Indices for ``len(fractions)`` held-out parts and the rest (last), class by class.

    A class with at least two videos gives each held-out part at least one of them, and always
    keeps one for the rest.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    array = np.asarray(labels)
    for label in np.unique(array):
        idx = rng.permutation(np.flatnonzero(array == label)).tolist()
        for k, fraction in enumerate(fractions):
            take = max(1, round(len(idx) * fraction)) if fraction > 0 and len(idx) > 1 else 0
            parts[k] += idx[:take]
            idx = idx[take:]
        parts[-1] += idx
    return [sorted(p) for p in parts]


def _pick(samples: list[VideoSample], indices: list[int]) -> list[VideoSample]:
    return [samples[i] for i in indices]


def _carve(samples: list[VideoSample], fractions: tuple[float, ...]) -> list[list[VideoSample]]:
    parts = stratified_split([s.label for s in samples], fractions)
    return [_pick(samples, p) for p in parts]


def _relabel(
    samples: list[VideoSample], names: list[str], classes: list[str], folder: Path
) -> list[VideoSample]:
    """Map a split's labels (its own sorted folders) onto the training split's classes."""
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise DataError(f"{folder}: class folder(s) {unknown} are not in the training classes")
    index = {name: classes.index(name) for name in names}
    return [VideoSample(s.path, index[names[s.label]]) for s in samples]


def _folders(root: Path, lister: Lister, config: RunConfig) -> Listing:
    """``root/<class>/...`` split by class-stratified fractions, or ``root/train|val|test/``."""
    d = config.data
    skipped: list[tuple[str, str]] = []
    if not (root / "train").is_dir():
        samples, classes = lister(root, skipped=skipped)
        val, test, train = _carve(samples, (d.val_fraction, d.test_fraction))
        splits = {"train": train, "val": val, "test": test}
        return Listing(splits, classes, str(root), skipped=skipped)
    train, classes = lister(root / "train", skipped=skipped)
    splits: dict[str, list[VideoSample]] = {"train": train}
    for split in ("val", "test"):
        if (root / split).is_dir():
            samples, names = lister(root / split, skipped=skipped)
            splits[split] = _relabel(samples, names, classes, root / split)
    missing = tuple(s for s in ("val", "test") if s not in splits)
    if missing:
        fractions = tuple(d.val_fraction if s == "val" else d.test_fraction for s in missing)
        *held_out, splits["train"] = _carve(splits["train"], fractions)
        splits.update(zip(missing, held_out, strict=True))
    return Listing({s: splits[s] for s in SPLITS}, classes, str(root), skipped=skipped)


def _moving_digits(config: RunConfig) -> Listing:
    from rnnkit_video.moving_digits import FPS, ensure_moving_digits

    counts = config.data.videos_per_class
    size = 32 if config.data.size <= 32 else 64  # rendering at 32 px is 3x faster
    root = ensure_moving_digits(counts[0] if len(counts) == 1 else tuple(counts), size=size)
    listing = _folders(root, list_videofolder, config)  # train/val/test folders: no fractions
    listing.fps = float(FPS)
    return listing


def _ucf101(config: RunConfig) -> Listing:
    root = config.data.require_path("~/UCF101")
    fold = config.data.fold
    train, classes = list_ucf101(root, fold, "train")
    test, _ = list_ucf101(root, fold, "test")
    val, train = _carve(train, (config.data.val_fraction,))
    return Listing({"train": train, "val": val, "test": test}, classes, str(root))


LISTERS: dict[str, Callable[[RunConfig], Listing]] = {
    "moving-digits": _moving_digits,
    "videofolder": lambda c: _folders(c.data.require_path("~/videos"), list_videofolder, c),
    "ucf101": _ucf101,
    "framefolder": lambda c: _folders(c.data.require_path("~/frames"), list_framefolder, c),
}


def list_source(name: str, config: RunConfig) -> Listing:
    """List the labelled videos of source ``name`` per split (nothing is decoded)."""
    listing = LISTERS[name](config)
    require_classes(listing.class_names, listing.root)  # before a split is found empty
    for split in SPLITS:
        if not listing.splits[split]:
            raise DataError(
                f"{listing.root}: the {split} split is empty (too few videos per class?)"
            )
    return listing


def clip_datasets(
    listing: Listing, config: RunConfig, probe_cache: Any = None
) -> dict[str, VideoClipDataset]:
    """One clip data set per split: training clips sampled by ``data.sampling`` (and augmented),
    evaluation clips uniform (``data.test_clips`` per video; segment centres when training used
    segments); one frame cache for the three."""
    d = config.data
    common: dict[str, Any] = dict(
        num_frames=d.num_frames,
        stride=d.stride,
        size=(d.size, d.size),
        short_policy=d.short_policy,
        class_names=listing.class_names,
        probe_cache=probe_cache,
        frame_cache=clips.frame_cache(config),
    )
    evaluation = (
        {"mode": "uniform", "num_clips": d.test_clips}
        if d.sampling == "random"
        else {"mode": "segment"}
    )
    return {
        "train": VideoClipDataset(
            listing.splits["train"],
            mode=d.sampling,
            seed=config.seed,
            augment=clips.augment(config),
            **common,
        ),
        "val": VideoClipDataset(
            listing.splits["val"], seed=None, return_index=True, **evaluation, **common
        ),
        "test": VideoClipDataset(
            listing.splits["test"], seed=None, return_index=True, **evaluation, **common
        ),
    }


def build_bundle(listing: Listing, config: RunConfig) -> DataBundle:
    """The DataBundle of a listing (items float in [0, 1]; the model normalises with the spec's
    mean/std). The three splits share one ``skipped`` list, so files found unreadable while
    training or testing reach the run summary too."""
    sets = clip_datasets(listing, config, ProbeCache())
    skipped = [*listing.skipped, *(item for split in SPLITS for item in sets[split].skipped)]
    for dataset in sets.values():
        dataset.skipped = skipped
    for split in SPLITS:
        if len(sets[split]) == 0:
            raise DataError(f"{listing.root}: no readable video in the {split} split")
    d = config.data
    spec = VideoSpec(
        class_names=tuple(listing.class_names),
        channels=3,
        height=d.size,
        width=d.size,
        mean=MEAN,
        std=STD,
        num_frames=d.num_frames,
        stride=d.stride,
        fps=listing.fps,
    )
    items = {split: [sample.path for sample in sets[split].samples] for split in SPLITS}
    return DataBundle(sets["train"], sets["val"], sets["test"], spec, skipped, items)


def open_source(name: str, config: RunConfig) -> DataBundle:
    """The ``DataBundle`` of source ``name``: its listing, read as clip data sets."""
    return build_bundle(list_source(name, config), config)
