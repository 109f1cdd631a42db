"""What video-action's clip data sets are built with: the decoded-frame cache and the training
augmentation, from the ``data.*`` settings."""

from __future__ import annotations

from rnnvision_kit import RunConfig
from rnnvision_kit.data import ClipAugment, FrameCache

# Frames a random clip of an H.264 video decodes, about: from the keyframe before it (x264 puts
# one every 250 frames, and at scene cuts) to its end. Decoding a whole video of N frames once
# pays back when N <= this x epochs (benchmarks/frame_cache.py: 10 s videos break even at ~3).
FRAMES_PER_CLIP_DECODE = 100


def frame_cache(config: RunConfig) -> FrameCache | None:
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


def augment(config: RunConfig) -> ClipAugment | None:
    """The training clips' augmentation (``data.augment``, ``crop_scale``, ``hflip``,
    ``jitter``), or None when it is off."""
    d = config.data
    if not d.augment:
        return None
    return ClipAugment(crop_scale=d.crop_scale, hflip=d.hflip, jitter=d.jitter)
