"""The ``data.*`` settings video sources read (``VideoDataConfig``), for video tasks to subclass.

Imports no torch: a task's ``config.py`` subclasses it and stays light.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from rnnvision_kit.config import DataConfig, Rule, setting

# The data.* settings build_clip_bundle reads: a source built with it declares them in reads=.
CLIP_SETTINGS = (
    "num_frames",
    "stride",
    "size",
    "resize",
    "sampling",
    "test_clips",
    "short_policy",
    "frame_cache",
    "frame_cache_gb",
    "augment",
    "crop_scale",
    "hflip",
    "jitter",
)
MOVING_DIGITS_VIDEOS = [240, 15, 20]  # moving-digits: train, val, test videos per class


def frame_cache_problem(value: bool | str) -> str | None:
    """What is wrong with a ``data.frame_cache`` value, or None: it must be true, false, or a
    folder that exists or whose parent folder exists. A bare word that is no existing folder
    (``maybe``) is refused: write a new folder in the working directory as ``./maybe``."""
    if isinstance(value, bool):
        return None
    text = str(value)
    if not text:
        return "is empty (true, false or a folder)"
    path = Path(text).expanduser()
    if path.exists():
        return None if path.is_dir() else f"{text} is a file, not a folder"
    if not text.startswith(("~", ".")) and "/" not in text and os.sep not in text:
        return f"{text!r} is not true, false or a folder (a new folder here: ./{text})"
    if not path.parent.is_dir():
        return f"{text}: neither the folder nor its parent folder exists"
    return None


@dataclass
class VideoDataConfig(DataConfig):
    """The ``data.*`` settings that video sources read: how clips are cut, sampled, cached and
    augmented (``CLIP_SETTINGS``, read by every source built with ``build_clip_bundle``), and
    how the built-in sources list and split videos. Subclass it for a video task's data
    settings, giving ``source`` the task's default source."""

    num_frames: int = setting(5, ge=1)  # frames per clip (T)
    stride: int = setting(3, ge=1)  # every stride-th frame: a clip spans (T - 1) * stride + 1
    sampling: Literal["random", "segment"] = "random"  # training: a random clip | TSN segments
    # val/test: logits averaged over N clips per video (uniform; segment sampling: N TSN clips)
    test_clips: int = setting(2, ge=1)
    size: int = setting(32, ge=8, le=1024)  # frames are resized to size x size
    # how a frame that is not square becomes size x size: crop (resize the short side, then
    # centre-crop, as torchvision's video recipes do), pad (resize the long side, pad with
    # black) or stretch (distort the aspect ratio)
    resize: Literal["crop", "pad", "stretch"] = "crop"
    short_policy: Literal["loop", "pad"] = "loop"  # videos shorter than a clip: loop or repeat last
    fold: int = setting(1, ge=1)  # ucf101: split files trainlist0N/testlist0N
    val_fraction: float = setting(0.1, ge=0, lt=1)  # held out of train where a source has no val
    test_fraction: float = setting(0.2, ge=0, lt=1)  # held out where a source has no test split
    frame_cache: bool | str = True  # decoded frames on disk: true (rnnkit cache), false, a folder
    frame_cache_gb: float = setting(10.0, gt=0)  # size bound of the frame cache folder, in GiB
    augment: bool = False  # augment training clips (one draw for all frames of a clip)
    # random crop area, [min, max] fractions of the frame (augment)
    crop_scale: list[float] = setting(default_factory=lambda: [0.5, 1.0], length=(2,), gt=0, le=1)
    hflip: bool = False  # flip with probability 0.5 (augment; off: left/right can be the class)
    jitter: float = setting(0.2, ge=0)  # colour jitter strength: brightness, contrast, saturation
    # moving-digits videos per class, a list: [train, val, test], or [n] for [n, n/4, n/3]
    # (at least 1 each)
    videos_per_class: list[int] = setting(
        default_factory=lambda: list(MOVING_DIGITS_VIDEOS), ge=1, length=(1, 3)
    )

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "crop_scale",
            "needs [min, max] with min <= max",
            lambda d: d.crop_scale[0] <= d.crop_scale[1],
        ),
        Rule(
            "frame_cache",
            lambda d: frame_cache_problem(d.frame_cache),
            lambda d: frame_cache_problem(d.frame_cache) is None,
        ),
    )
