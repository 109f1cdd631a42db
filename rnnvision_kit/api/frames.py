"""Frames from memory as the frame stream a task's ``stream`` reads (what ``rnnkit stream``
gives it from a file, a camera or a URL): any iterable of ``C,H,W`` frames, tensors or NumPy
arrays, ``uint8`` or float in [0, 1], such as a ``T,C,H,W`` clip or a generator."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from rnnvision_kit.api.inputs import FRAME, as_batch, as_float, resized
from rnnvision_kit.data.frames import DEFAULT_FPS
from rnnvision_kit.task import StreamFrame


class FrameFeed:
    """:class:`~rnnvision_kit.StreamFrame` records from ``frames``: each checked, scaled to
    [0, 1], resized to ``size`` and moved to ``device``; times are ``index / fps``. It answers
    what a task may ask a ``FrameStream``: ``name``, ``fps``, ``size`` (the first frame's
    ``H, W``) and the counters."""

    name = "frames"
    timeout: float | None = None
    waited_s = 0.0
    skipped = 0
    dropped = 0
    error = ""

    def __init__(
        self,
        frames: Iterable[Any],
        size: tuple[int, int],
        *,
        channels: int = 3,
        device: torch.device | str = "cpu",
        fps: float | None = None,
        max_frames: int | None = None,
        what: str = "stream",
    ) -> None:
        self._frames: Iterator[Any] = iter(frames)
        self.height, self.width = size
        self.channels = channels
        self.device = torch.device(device)
        self.fps = float(fps) if fps else DEFAULT_FPS
        self.max_frames = max_frames
        self.what = what
        self.read = 0
        self.ended: str | None = None
        self._first: torch.Tensor | None = None  # peeked to answer ``size``

    opened = True

    @property
    def size(self) -> tuple[int, int]:
        """``H, W`` of the frames as given (before resizing to the model's size)."""
        if self._first is None:
            first = next(self._frames, None)
            if first is None:
                return self.height, self.width
            self._first = self._checked(first)
            self._frames = itertools.chain([self._first], self._frames)
        return int(self._first.shape[-2]), int(self._first.shape[-1])

    def _checked(self, frame: Any) -> torch.Tensor:
        """One frame ``C,H,W``, checked (a batch axis is refused)."""
        if self._first is not None and frame is self._first:
            return self._first
        return as_batch(frame, FRAME, self.channels, self.what, batch=False)[0][0]

    def __iter__(self) -> FrameFeed:
        return self

    def __next__(self) -> StreamFrame:
        if self.ended is not None:
            raise StopIteration
        if self.max_frames is not None and self.read >= self.max_frames:
            self.ended = "max-frames"
            raise StopIteration
        frame = next(self._frames, None)
        if frame is None:
            self.ended = "end"
            raise StopIteration
        image = self._checked(frame).to(self.device)
        image = resized(as_float(image), (self.height, self.width)).contiguous()
        index = self.read
        self.read += 1
        return StreamFrame(index, index / self.fps, image)

    def stop(self, reason: str = "stop") -> None:
        """End the stream before its next frame."""
        self.ended = self.ended or reason

    def close(self) -> None:
        self.ended = self.ended or "stop"
