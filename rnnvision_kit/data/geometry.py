"""How a frame of one size becomes another (``data.resize``): the geometry alone, no pixels.

- ``stretch``: straight to ``H x W`` (the aspect ratio changes; runs saved before the setting
  existed did this);
- ``crop``: scaled to cover ``H x W`` (the short side fits), then centre-cropped, as
  torchvision's video recipes (``Resize`` of the short side, then ``CenterCrop``) do;
- ``pad``: scaled to fit inside ``H x W`` (the long side fits), centred on a black canvas.

The readers (files, frame folders, live streams) resize to :attr:`Fit.scaled` and then cut or
pad with :func:`fit_array`, so every reader gives the same pixels for the same frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnvision_kit.errors import ConfigError

__all__ = ["RESIZE_MODES", "Fit", "check_resize", "fit", "fit_array"]

RESIZE_MODES: tuple[str, ...] = ("crop", "pad", "stretch")


class Fit(NamedTuple):
    """Where a frame goes: resize it to ``scaled`` (``h, w``), then take the ``size`` window at
    ``offset`` (``crop``: ``top, left`` inside the scaled frame; ``pad``: where the scaled frame
    sits on the black ``size`` canvas; ``stretch``: scaled == size, offset 0, 0)."""

    mode: str
    scaled: tuple[int, int]
    offset: tuple[int, int]
    size: tuple[int, int]


def check_resize(mode: str) -> str:
    """``mode`` if it is a resize mode, else ``ConfigError`` naming ``data.resize``."""
    if mode not in RESIZE_MODES:
        raise ConfigError(
            f"data.resize: unknown mode {mode!r} (expected one of {', '.join(RESIZE_MODES)})"
        )
    return mode


def fit(source: tuple[int, int], size: tuple[int, int], mode: str = "stretch") -> Fit:
    """The geometry that turns an ``h, w`` frame into ``H, W`` = ``size`` under ``mode``."""
    check_resize(mode)
    (h, w), (height, width) = source, size
    if mode == "stretch" or (h, w) == (height, width) or h <= 0 or w <= 0:
        return Fit(mode, (height, width), (0, 0), (height, width))
    if mode == "crop":
        scale = max(height / h, width / w)
        scaled = (max(height, round(h * scale)), max(width, round(w * scale)))
        offset = ((scaled[0] - height) // 2, (scaled[1] - width) // 2)
    else:
        scale = min(height / h, width / w)
        scaled = (min(height, max(1, round(h * scale))), min(width, max(1, round(w * scale))))
        offset = ((height - scaled[0]) // 2, (width - scaled[1]) // 2)
    return Fit(mode, scaled, offset, (height, width))


def fit_array(image: np.ndarray, geometry: Fit) -> np.ndarray:
    """An ``h, w, C`` image already resized to ``geometry.scaled``, cropped or padded (black) to
    ``geometry.size``; the image itself when nothing is cut or added."""
    height, width = geometry.size
    top, left = geometry.offset
    if geometry.scaled == geometry.size:
        return image
    if geometry.mode == "crop":
        return image[top : top + height, left : left + width]
    canvas = np.zeros((height, width, *image.shape[2:]), dtype=image.dtype)
    canvas[top : top + image.shape[0], left : left + image.shape[1]] = image
    return canvas
