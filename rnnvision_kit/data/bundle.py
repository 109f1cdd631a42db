"""The clip-bundle builder: a video source's ``Listing`` read as clip data sets through PyAV.

``build_clip_bundle(listing, config)`` gives the source's ``DataBundle``. The training split
yields one clip ``(T,3,H,W)`` per video (a random clip or TSN segments, augmented when
``data.augment`` is on); validation and test yield ``data.test_clips`` uniform clips
``(N,T,3,H,W)`` plus the video's index. All splits read through one decoded-frame cache
(``data.frame_cache``). The settings it reads are ``CLIP_SETTINGS`` (``VideoDataConfig``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from rnnvision_kit.data.augment import ClipAugment
from rnnvision_kit.data.framecache import FrameCache
from rnnvision_kit.data.listing import SPLITS, Listing
from rnnvision_kit.data.video import ProbeCache
from rnnvision_kit.data.video_datasets import VideoClipDataset
from rnnvision_kit.dataspec import DataBundle, VideoSpec
from rnnvision_kit.errors import DataError

if TYPE_CHECKING:
    from rnnvision_kit.config import RunConfig
    from rnnvision_kit.data.settings import VideoDataConfig

# The model normalises frames with ImageNet statistics (what torchvision encoders expect).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Frames a random clip of an H.264 video decodes, about: from the keyframe before it (x264 puts
# one every 250 frames, and at scene cuts) to its end. Decoding a whole video of N frames once
# pays back when N <= this x epochs (benchmarks/frame_cache.py: 10 s videos break even at ~3).
FRAMES_PER_CLIP_DECODE = 100


def frame_cache(config: RunConfig[Any, VideoDataConfig]) -> FrameCache | None:
    """The frame cache of ``data.frame_cache`` (true: the rnnkit cache folder, a string: a
    folder of its own, ``rnnkit-frames/``, inside that folder, false: none), bounded by
    ``data.frame_cache_gb``. Training videos are cached whole
    where that pays: up to ``FRAMES_PER_CLIP_DECODE x train.epochs`` frames."""
    d = config.data
    if d.frame_cache is False:
        return None
    folder = None if d.frame_cache is True else str(d.frame_cache)
    whole = FRAMES_PER_CLIP_DECODE * config.train.epochs
    return FrameCache(folder, max_bytes=int(d.frame_cache_gb * 2**30), whole_max_frames=whole)


def clip_augment(config: RunConfig[Any, VideoDataConfig]) -> ClipAugment | None:
    """The training clips' augmentation (``data.augment``, ``crop_scale``, ``hflip``,
    ``jitter``), or None when it is off."""
    d = config.data
    if not d.augment:
        return None
    return ClipAugment(crop_scale=d.crop_scale, hflip=d.hflip, jitter=d.jitter)


def clip_datasets(
    listing: Listing,
    config: RunConfig[Any, VideoDataConfig],
    probe_cache: ProbeCache | None = None,
) -> dict[str, VideoClipDataset]:
    """One clip data set per split: training clips sampled by ``data.sampling`` (and augmented),
    evaluation clips uniform (``data.test_clips`` per video; segment centres when training used
    segments); one frame cache for the three."""
    d = config.data
    common: dict[str, Any] = dict(
        num_frames=d.num_frames,
        stride=d.stride,
        size=(d.size, d.size),
        resize=d.resize,
        short_policy=d.short_policy,
        class_names=listing.class_names,
        probe_cache=probe_cache,
        frame_cache=frame_cache(config),
    )
    evaluation: dict[str, Any] = (
        {"mode": "uniform", "num_clips": d.test_clips}
        if d.sampling == "random"
        else {"mode": "segment", "num_clips": d.test_clips}
    )
    return {
        "train": VideoClipDataset(
            listing.splits["train"],
            mode=d.sampling,
            seed=config.seed,
            augment=clip_augment(config),
            **common,
        ),
        "val": VideoClipDataset(
            listing.splits["val"], seed=None, return_index=True, **evaluation, **common
        ),
        "test": VideoClipDataset(
            listing.splits["test"], seed=None, return_index=True, **evaluation, **common
        ),
    }


def build_clip_bundle(listing: Listing, config: RunConfig) -> DataBundle:
    """The ``DataBundle`` of a listing: a ``VideoClipDataset`` per split (items float in
    [0, 1]; the model normalises with the spec's ImageNet mean/std), a ``VideoSpec``, the
    skipped files, each split's video paths as ``items`` and the listing's ``origins``. The three splits share one
    ``skipped`` list, so files found unreadable while training or testing reach the run summary
    too. Reads the ``CLIP_SETTINGS`` of ``config.data`` (a ``VideoDataConfig``)."""
    # a source built with it declares CLIP_SETTINGS in reads= (DataContext.source checks them)
    video = cast("RunConfig[Any, VideoDataConfig]", config)
    sets = clip_datasets(listing, video, ProbeCache())
    skipped = [*listing.skipped, *(item for split in SPLITS for item in sets[split].skipped)]
    for dataset in sets.values():
        dataset.skipped = skipped
    for split in SPLITS:
        if len(sets[split]) == 0:
            raise DataError(f"{listing.root}: no readable video in the {split} split")
    d = video.data
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
        resize=d.resize,
    )
    items = {split: [sample.path for sample in sets[split].samples] for split in SPLITS}
    origins = dict(listing.origins) or None
    return DataBundle(sets["train"], sets["val"], sets["test"], spec, skipped, items, origins)


def cold_videos(dataset: Any) -> int:
    """How many videos of a training ``VideoClipDataset`` its frame cache does not hold yet (the
    first epoch decodes them whole into it); 0 for other data sets, or without a cache."""
    if not isinstance(dataset, VideoClipDataset) or dataset.frame_cache is None:
        return 0
    if dataset.seed is None or dataset.mode == "uniform":  # fixed clips: not cached whole
        return 0
    cache = dataset.frame_cache
    held = (
        cache.holds_whole(sample.path, info, dataset.size, dataset.resize)
        for sample, info in zip(dataset.samples, dataset.infos, strict=True)
    )
    return sum(1 for h in held if h is False)
