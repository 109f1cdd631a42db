"""Data sources of video-action: moving-digits (embedded), video folders, UCF101 splits, frame folders.

Each source is a listing function (``config -> Listing``, no file opened), registered as the
source's ``list_samples=``; :func:`open_listing` reads a listing as clip data sets with the
core's ``build_clip_bundle``. :func:`build_data` is video-action's ``build_data``: the source's
bundle, checked against the video-source contract.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnvision_kit import DataBundle, DataContext, DataError, RunConfig, require_classes
from rnnvision_kit.data import (
    Listing,
    ListSamples,
    VideoDataConfig,
    VideoSample,
    build_clip_bundle,
    check_video_source,
    list_framefolder,
    list_ucf101,
    list_videofolder,
)

SPLITS = ("train", "val", "test")
SPLIT_SEED = 0  # the seed of every carved split (fixed: every run gets the same split)
# what these sources read: the data settings of video tasks (VideoDataConfig)
VideoRunConfig = RunConfig[Any, VideoDataConfig]

# list_videofolder / list_framefolder: ``lister(folder, skipped=list)`` -> (samples, classes)
Lister = Callable[..., tuple[list[VideoSample], list[str]]]


def stratified_split(
    labels: list[int], fractions: tuple[float, ...], seed: int = SPLIT_SEED
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


def carved_from(where: str | Path, fraction: float) -> str:
    """The origin of a split carved by :func:`stratified_split` (``DataBundle.origins``)."""
    return f"carved from {where} ({fraction:.0%} per class, split seed {SPLIT_SEED})"


def _less(where: str | Path, carved: Sequence[str]) -> str:
    return f"{where}, less the videos carved for {' and '.join(carved)}" if carved else str(where)


def _folders(root: Path, lister: Lister, config: VideoRunConfig) -> Listing:
    """``root/<class>/...`` split by class-stratified fractions, or ``root/train|val|test/``."""
    d = config.data
    skipped: list[tuple[str, str]] = []
    if not (root / "train").is_dir():
        samples, classes = lister(root, skipped=skipped)
        val, test, train = _carve(samples, (d.val_fraction, d.test_fraction))
        splits: dict[str, list[VideoSample]] = {"train": train, "val": val, "test": test}
        where = f"{root}/<class>/ (no train/ folder)"
        origins = {
            "train": _less(where, ("val", "test")),
            "val": carved_from(where, d.val_fraction),
            "test": carved_from(where, d.test_fraction),
        }
        return Listing(
            splits, classes, str(root), skipped=skipped, origins=origins, carved=["val", "test"]
        )
    train, classes = lister(root / "train", skipped=skipped)
    splits = {"train": train}
    origins = {}
    for split in ("val", "test"):
        if (root / split).is_dir():
            samples, names = lister(root / split, skipped=skipped)
            splits[split] = _relabel(samples, names, classes, root / split)
            origins[split] = f"the {root / split}/ folder"
    missing = tuple(s for s in ("val", "test") if s not in splits)
    if missing:
        fractions = tuple(d.val_fraction if s == "val" else d.test_fraction for s in missing)
        *held_out, splits["train"] = _carve(splits["train"], fractions)
        splits.update(zip(missing, held_out, strict=True))
        for split, fraction in zip(missing, fractions, strict=True):
            origins[split] = carved_from(f"{root / 'train'}/", fraction)
    origins["train"] = _less(f"the {root / 'train'}/ folder", missing)
    return Listing(
        {s: splits[s] for s in SPLITS},
        classes,
        str(root),
        skipped=skipped,
        origins={s: origins[s] for s in SPLITS},
        carved=list(missing),
    )


def checked(listing: Listing) -> Listing:
    """``listing``, or a DataError when it has fewer than two classes or an empty split."""
    require_classes(listing.class_names, listing.root)  # before a split is found empty
    for split in SPLITS:
        if not listing.splits[split]:
            raise DataError(
                f"{listing.root}: the {split} split is empty (too few videos per class?)"
            )
    return listing


def moving_digits_listing(config: VideoRunConfig) -> Listing:
    """moving-digits: generated once into the cache (``data.videos_per_class``), then listed as
    a video folder with train/val/test folders."""
    from rnnkit_video.moving_digits import FPS, ensure_moving_digits

    counts = config.data.videos_per_class
    size = 32 if config.data.size <= 32 else 64  # rendering at 32 px is 3x faster
    per_split = counts[0] if len(counts) == 1 else (counts[0], counts[1], counts[2])  # 1 or 3
    root = ensure_moving_digits(per_split, size=size)
    listing = _folders(root, list_videofolder, config)  # train/val/test folders: no fractions
    listing.fps = float(FPS)
    listing.origins = {s: f"generated moving-digits, its {s}/ folder ({root / s})" for s in SPLITS}
    return checked(listing)


def videofolder_listing(config: VideoRunConfig) -> Listing:
    """videofolder: ``PATH/<class>/<video>`` or ``PATH/train|val|test/<class>/<video>``."""
    return checked(_folders(config.data.require_path("~/videos"), list_videofolder, config))


def ucf101_listing(config: VideoRunConfig) -> Listing:
    """ucf101: ``classInd.txt`` and the split files of ``data.fold``; val carved out of train."""
    root = config.data.require_path("~/UCF101")
    fold = config.data.fold
    train, classes = list_ucf101(root, fold, "train")
    test, _ = list_ucf101(root, fold, "test")
    val, train = _carve(train, (config.data.val_fraction,))
    train_file, test_file = f"trainlist{fold:02d}.txt", f"testlist{fold:02d}.txt"
    origins = {
        "train": f"split file {train_file} (data.fold={fold}), less the videos carved for val",
        "val": carved_from(f"split file {train_file}", config.data.val_fraction),
        "test": f"split file {test_file} (data.fold={fold})",
    }
    splits = {"train": train, "val": val, "test": test}
    return checked(Listing(splits, classes, str(root), origins=origins, carved=["val"]))


def framefolder_listing(config: VideoRunConfig) -> Listing:
    """framefolder: ``PATH/<class>/<video>/<frame>.jpg|png`` (or split folders)."""
    return checked(_folders(config.data.require_path("~/frames"), list_framefolder, config))


def open_listing(list_samples: ListSamples, config: VideoRunConfig) -> DataBundle:
    """The ``DataBundle`` of a source given by its listing function: the factory each source of
    this plugin registers, its ``list_samples`` bound."""
    return build_clip_bundle(list_samples(config), config)


def open_source(name: str, config: VideoRunConfig) -> DataBundle:
    """The ``DataBundle`` of this plugin's source ``name`` (a key of ``plugin.SOURCES``)."""
    from rnnkit_video.plugin import SOURCES
    from rnnvision_kit import lazy

    return open_listing(lazy(f"{__name__}:{SOURCES[name][0]}"), config)


def build_data(ctx: DataContext) -> DataBundle:
    """video-action's data: ``data.source``'s bundle (``ctx.open_source()``: its kind, settings
    and items checked), then the video-source contract (``list_samples=``, each split's
    ``samples`` and ``set_epoch``): a breach is one DataError line, not a run that trains on one
    fixed clip per video or writes no ``predictions_test.jsonl``."""
    entry = ctx.source()
    bundle = ctx.open_source()
    check_video_source(entry.qualified_name, bundle, entry.meta.get("list_samples"))
    return bundle
