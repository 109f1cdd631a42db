"""Clip augmentation on torchvision.transforms.v2: one random draw for every frame of a clip.

A clip is ``T, C, H, W`` float in [0, 1]; an optional mask clip ``T, H, W`` (class ids) gets the
same geometry with nearest-neighbour resampling. All randomness comes from the caller's
``torch.Generator`` (seed it from run seed, epoch and sample index for resume-exact runs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

import torch
from torch import Tensor

CropBox = tuple[int, int, int, int]  # top, left, height, width


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _randint(generator: torch.Generator, high: int) -> int:
    """A random int in ``[0, high)``."""
    return int(torch.randint(0, high, (), generator=generator))


class ClipAugment:
    """Random resized crop, horizontal flip and colour jitter for a clip.

    ``crop_scale`` is the ``[min, max]`` area fraction of the crop (``(1, 1)``: no crop),
    ``ratio`` its aspect-ratio range relative to the output's (1: undistorted; torchvision's
    ``RandomResizedCrop`` takes it absolute, which stretches every crop of a wide frame),
    ``size`` the ``(H, W)`` the crop is resized to (None: the input's size; set, it trains on
    crops smaller than the frames evaluated, e.g. native-resolution crops of large frames),
    ``hflip`` a flip with probability 0.5, ``jitter`` the strength of brightness, contrast and
    saturation jitter (factors drawn from ``[1 - jitter, 1 + jitter]``, applied in a random
    order; 0 = off).
    """

    def __init__(
        self,
        crop_scale: Sequence[float] = (1.0, 1.0),
        hflip: bool = False,
        jitter: float = 0.0,
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        size: Sequence[int] | None = None,
    ) -> None:
        if len(crop_scale) != 2 or not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(
                f"crop_scale must be [min, max] with 0 < min <= max <= 1, got {list(crop_scale)}"
            )
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must be [min, max] with 0 < min <= max, got {list(ratio)}")
        if jitter < 0:
            raise ValueError(f"jitter must be >= 0, got {jitter}")
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise ValueError(f"size must be [H, W] with H, W >= 1, got {list(size)}")
        self.size = (int(size[0]), int(size[1])) if size is not None else None
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.hflip = bool(hflip)
        self.jitter = float(jitter)

    @property
    def active(self) -> bool:
        """Whether any transform is on (an inactive augment returns its input unchanged)."""
        return (
            self.crop_scale != (1.0, 1.0) or self.size is not None or self.hflip or self.jitter > 0
        )

    def __repr__(self) -> str:
        size = f", size={list(self.size)}" if self.size is not None else ""
        return (
            f"ClipAugment(crop_scale={list(self.crop_scale)}{size}, hflip={self.hflip}, "
            f"jitter={self.jitter})"
        )

    def crop_box(self, height: int, width: int, generator: torch.Generator) -> CropBox | None:
        """Draw a crop box like ``RandomResizedCrop.get_params``, with ``ratio`` relative to the
        output's aspect ratio (None: no crop)."""
        if self.crop_scale == (1.0, 1.0):
            return None
        area = height * width
        out_h, out_w = self.size if self.size is not None else (height, width)
        aspect_lo, aspect_hi = (r * out_w / out_h for r in self.ratio)
        log_lo, log_hi = math.log(aspect_lo), math.log(aspect_hi)
        for _ in range(10):
            target = area * _uniform(generator, *self.crop_scale)
            aspect = math.exp(_uniform(generator, log_lo, log_hi))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                return _randint(generator, height - h + 1), _randint(generator, width - w + 1), h, w
        # Fallback: the largest central crop within the ratio range.
        in_ratio = width / height
        if in_ratio < aspect_lo:
            w, h = width, round(width / aspect_lo)
        elif in_ratio > aspect_hi:
            h, w = height, round(height * aspect_hi)
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    @overload
    def __call__(
        self, frames: Tensor, generator: torch.Generator, masks: None = None
    ) -> tuple[Tensor, None]: ...

    @overload
    def __call__(
        self, frames: Tensor, generator: torch.Generator, masks: Tensor
    ) -> tuple[Tensor, Tensor]: ...

    def __call__(
        self, frames: Tensor, generator: torch.Generator, masks: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Augment ``frames`` (``T, C, H, W`` float in [0, 1]) and ``masks`` (``T, H, W``) alike."""
        if not self.active:
            return frames, masks
        from torchvision import tv_tensors  # imported here: torchvision takes ~1 s to import
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        height, width = frames.shape[-2:]
        out_size = list(self.size) if self.size is not None else [height, width]
        video = tv_tensors.Video(frames)
        mask = tv_tensors.Mask(masks) if masks is not None else None
        box = self.crop_box(height, width, generator)
        if box is None and self.size is not None and self.size != (height, width):
            box = (0, 0, height, width)  # no crop drawn: the whole frame, resized
        if box is not None:
            video = F.resized_crop(video, *box, size=out_size, antialias=True)
            if mask is not None:
                mask = F.resized_crop(
                    mask, *box, size=out_size, interpolation=InterpolationMode.NEAREST
                )
        if self.hflip and float(torch.rand((), generator=generator)) < 0.5:
            video = F.horizontal_flip(video)
            if mask is not None:
                mask = F.horizontal_flip(mask)
        if self.jitter > 0:
            low, high = max(0.0, 1.0 - self.jitter), 1.0 + self.jitter
            ops = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation)
            factors = [_uniform(generator, low, high) for _ in ops]
            for i in torch.randperm(len(ops), generator=generator).tolist():
                video = ops[i](video, factors[i])
        out = video.as_subclass(Tensor).clamp_(0.0, 1.0)
        return out, (mask.as_subclass(Tensor) if mask is not None else None)
