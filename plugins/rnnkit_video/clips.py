"""A clip data set that keeps short videos' decoded frames in memory across epochs."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import get_worker_info

from rnnvision_kit.data import VideoClipDataset, read_frames

# Videos of at most this many times a clip's frames are decoded whole into the frame cache.
CACHE_WHOLE_FACTOR = 4


class CachedClipDataset(VideoClipDataset):
    """A :class:`VideoClipDataset` that keeps short videos' decoded frames in memory.

    A video of at most ``CACHE_WHOLE_FACTOR`` times the frames a clip reads is decoded whole the
    first time it is used (uint8, at the data set's size), while ``cache_mb`` allows; later clips
    of it are sliced from memory, so epochs after the first decode nothing. The cache lives in
    the process that reads: with ``num_workers > 0`` each worker has its own for one epoch.
    """

    def __init__(self, *args: Any, cache_mb: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache_bytes = int(cache_mb * 2**20)
        self._frames: dict[int, torch.Tensor] = {}
        self._cached_bytes = 0

    def _whole(self, index: int) -> torch.Tensor | None:
        """The decoded frames of video ``index`` if it is (or can be) cached, else None."""
        frames = self._frames.get(index)
        if frames is not None:
            return frames
        info, path = self.infos[index], self.samples[index].path
        height, width = self.size or (info.height, info.width)
        size = info.num_frames * 3 * height * width
        reads = self.num_frames * self.num_clips
        if (
            os.path.isdir(path)
            or info.num_frames > CACHE_WHOLE_FACTOR * reads
            or self._cached_bytes + size > self.cache_bytes
        ):
            return None
        threads = self.threads if self.threads is not None else get_worker_info() is None
        frames = read_frames(path, range(info.num_frames), info, size=self.size, threads=threads)
        self._frames[index] = frames
        self._cached_bytes += frames.numel()
        return frames

    def _load(self, index: int) -> torch.Tensor:
        frames = self._whole(index) if self.cache_bytes else None
        if frames is None:
            return super()._load(index)
        clip = frames[self.clip_indices(index)].to(torch.float32).div_(255.0)
        if self.mode == "uniform":
            clip = clip.reshape(self.num_clips, self.num_frames, *clip.shape[1:])
        return clip
