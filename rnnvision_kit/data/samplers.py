"""Clip samplers: which frame indices of a video make a clip (deterministic given the rng)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "Rng",
    "apply_short_policy",
    "clip_generator",
    "clip_span",
    "random_clip_indices",
    "segment_clip_indices",
    "segment_indices",
    "uniform_clip_indices",
]

Rng = torch.Generator | random.Random
SHORT_POLICIES = ("loop", "pad")


def clip_generator(*key: int) -> torch.Generator:
    """A generator seeded from integers, e.g. ``(seed, epoch, index)``: the same draws for the
    same key in any process (workers, DDP ranks, a resumed run)."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if int(value) < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")


def _uniform(rng: Rng) -> float:
    """A float in [0, 1) from either kind of generator."""
    if isinstance(rng, random.Random):
        return rng.random()
    return float(torch.rand((), generator=rng))


def _randint(rng: Rng, high: int) -> int:
    """An int in [0, high] inclusive."""
    if isinstance(rng, random.Random):
        return rng.randint(0, high)
    return int(torch.randint(0, high + 1, (), generator=rng))


def clip_span(num_frames: int, stride: int) -> int:
    """Number of video frames a clip of ``num_frames`` taken every ``stride`` frames covers."""
    return (num_frames - 1) * stride + 1


def random_clip_indices(num_video_frames: int, num_frames: int, stride: int, rng: Rng) -> list[int]:
    """Training clip: ``num_frames`` indices ``stride`` apart from a random start.

    A video shorter than the clip starts at 0; indices past its end are left for the reader's
    short-video policy.
    """
    _check_positive(num_video_frames=num_video_frames, num_frames=num_frames, stride=stride)
    slack = num_video_frames - clip_span(num_frames, stride)
    start = _randint(rng, slack) if slack > 0 else 0
    return [start + i * stride for i in range(num_frames)]


def uniform_clip_indices(
    num_video_frames: int, num_frames: int, stride: int, num_clips: int
) -> list[list[int]]:
    """Test clips: ``num_clips`` clips with evenly spaced starts from the first to the last
    possible one (one clip: the centre)."""
    _check_positive(
        num_video_frames=num_video_frames, num_frames=num_frames, stride=stride, num_clips=num_clips
    )
    slack = max(num_video_frames - clip_span(num_frames, stride), 0)
    if num_clips == 1:
        starts = [slack // 2]
    else:
        starts = [round(slack * c / (num_clips - 1)) for c in range(num_clips)]
    return [[s + i * stride for i in range(num_frames)] for s in starts]


def segment_indices(num_video_frames: int, num_segments: int, rng: Rng | None = None) -> list[int]:
    """TSN sampling: one frame from each of ``num_segments`` equal segments; a random frame
    within the segment when ``rng`` is given (training), its centre otherwise."""
    _check_positive(num_video_frames=num_video_frames, num_segments=num_segments)
    length = num_video_frames / num_segments
    offsets = [0.5] * num_segments if rng is None else [_uniform(rng) for _ in range(num_segments)]
    return [
        min(int(length * (k + offset)), num_video_frames - 1) for k, offset in enumerate(offsets)
    ]


def segment_clip_indices(
    num_video_frames: int, num_segments: int, num_clips: int
) -> list[list[int]]:
    """Test clips of TSN sampling: ``num_clips`` clips of one frame per segment, clip ``c``
    taking each segment's frame at offset ``(c + 0.5) / num_clips`` of it (one clip: the
    centres, as ``segment_indices`` without ``rng``)."""
    _check_positive(
        num_video_frames=num_video_frames, num_segments=num_segments, num_clips=num_clips
    )
    length = num_video_frames / num_segments
    return [
        [
            min(int(length * (k + (c + 0.5) / num_clips)), num_video_frames - 1)
            for k in range(num_segments)
        ]
        for c in range(num_clips)
    ]


def apply_short_policy(indices: Sequence[int], num_video_frames: int, policy: str) -> list[int]:
    """Map indices past the end of a video: ``"loop"`` wraps them, ``"pad"`` clamps to the last."""
    if policy not in SHORT_POLICIES:
        raise ValueError(f"unknown short_policy {policy!r} (expected 'loop' or 'pad')")
    if num_video_frames < 1:
        raise ValueError(f"num_video_frames must be >= 1, got {num_video_frames}")
    if policy == "loop":
        return [int(i) % num_video_frames for i in indices]
    return [min(int(i), num_video_frames - 1) for i in indices]
