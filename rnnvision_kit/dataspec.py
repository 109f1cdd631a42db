"""Data specs: what a model needs to know about its data, one typed record per data kind, and the
item format each kind promises (checked on the first items when a source is opened).

| kind | item |
|---|---|
| `image` | `(image, label)`: float32 `C,H,W` in [0, 1]; int64 class id |
| `video` | train: `(clip, label)`, clip float32 `T,C,H,W` in [0, 1]; val/test: `(clips, label[, index])`, `T,C,H,W` or `N,T,C,H,W` (N clips of one video) and the video's index in its split (for per-video records) |
| `segmentation` | `(frames, masks)`: float32 `T,C,H,W` in [0, 1]; int64 `T,H,W` class ids (`ignore_index` allowed) |

Sources never normalise: the model normalises with ``spec.mean``/``spec.std``. A spec is saved
in every checkpoint, so ``rnnkit predict`` rebuilds the model without the data set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from rnnvision_kit.errors import CheckpointError, DataError, UnreadableItem

if TYPE_CHECKING:
    from torch.utils.data import Dataset


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _subclasses() -> list[type[DataSpec]]:
    """Every ``DataSpec`` subclass defined (at any depth; those of a level in definition order)."""
    found: list[type[DataSpec]] = []
    pending = DataSpec.__subclasses__()
    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return found


def _declaring(kind: str) -> list[type[DataSpec]]:
    """The definitions of the spec class of ``kind``, oldest first: the first class that declared
    ``kind`` itself (not by inheriting it) owns it; a class of the same qualified name defined
    again (a reloaded module) is a newer definition. (A class refused for a taken kind may live
    on among the subclasses until garbage-collected: its name differs, so it is left out.)"""
    declared = [cls for cls in _subclasses() if cls.__dict__.get("kind") == kind]
    return [cls for cls in declared if _qualified(cls) == _qualified(declared[0])]


@dataclass(frozen=True)
class DataSpec:
    """Fields every kind has. ``mean``/``std`` hold one value per channel."""

    class_names: tuple[str, ...]  # class id -> name; its length is the number of classes
    channels: int  # C of the items
    height: int  # H of the items
    width: int  # W of the items
    mean: tuple[float, ...]  # per channel, what the model subtracts (items are in [0, 1])
    std: tuple[float, ...]  # per channel, what the model divides by

    kind: ClassVar[str] = ""  # the data kind; a subclass that declares one is its spec class

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A kind has one spec class: a second class declaring a taken kind is a TypeError (the
        same class defined again, as a reloaded module does, takes the kind over)."""
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        owner = _declaring(kind)[0] if kind else cls
        if _qualified(owner) != _qualified(cls):
            raise TypeError(
                f"data kind {kind!r} of {_qualified(cls)} is already the kind of "
                f"{_qualified(owner)}; choose another kind name"
            )

    def __post_init__(self) -> None:
        for name in ("class_names", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise DataError(
                f"{type(self).__name__}: mean and std need {self.channels} value(s) "
                f"(one per channel), got {len(self.mean)} and {len(self.std)}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    def split_size(self, split: str) -> tuple[int, int]:
        """``H, W`` of the items of ``split`` (kinds whose training items differ override it)."""
        return self.size

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists, numbers, strings) for checkpoints and JSON, with ``kind``."""
        values = dataclasses.asdict(self)
        return {
            "kind": self.kind,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()},
        }

    @staticmethod
    def from_dict(values: dict[str, Any]) -> DataSpec:
        """The spec :meth:`to_dict` wrote (its kind's class must be imported)."""
        kind = values.get("kind")
        cls = spec_type(str(kind))
        if cls is None:
            raise CheckpointError(
                f"data spec of unknown kind {kind!r} (known: {', '.join(spec_kinds())})"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class ImageSpec(DataSpec):
    """Spec of ``image`` data."""

    kind: ClassVar[str] = "image"


@dataclass(frozen=True)
class VideoSpec(DataSpec):
    """Spec of ``video`` data: clips of ``num_frames`` frames, every ``stride``-th frame."""

    num_frames: int = 1  # T of a clip
    stride: int = 1  # a clip takes every stride-th frame of the video
    fps: float | None = None  # frames per second of the videos, when one rate holds for all
    # how frames of another aspect ratio became height x width: crop (short side resized, then
    # centre-cropped), pad (long side resized, padded with black) or stretch; runs saved before
    # the setting existed stretched
    resize: str = "stretch"

    kind: ClassVar[str] = "video"


@dataclass(frozen=True)
class SegmentationSpec(DataSpec):
    """Spec of ``segmentation`` data: clips of ``clip_len`` frames with class-id masks."""

    clip_len: int = 1  # T of a clip
    ignore_index: int | None = None  # mask value left out of loss and metrics
    train_size: tuple[int, int] | None = None  # H, W of training crops (others: height, width)

    kind: ClassVar[str] = "segmentation"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_size is not None:
            object.__setattr__(self, "train_size", tuple(int(v) for v in self.train_size))

    def split_size(self, split: str) -> tuple[int, int]:
        """``H, W`` of the items of ``split``: ``train_size`` for training crops."""
        return self.train_size if split == "train" and self.train_size else self.size


# ------------------------------------------------------------------------------ kinds

BUILTIN_SPECS: tuple[type[DataSpec], ...] = (ImageSpec, VideoSpec, SegmentationSpec)


def spec_type(kind: str) -> type[DataSpec] | None:
    """The spec class of data kind ``kind``: a built-in one (``BUILTIN_SPECS``), else the
    ``DataSpec`` subclass that declares ``kind`` (a plugin's own kind: defining the class, on
    importing its module, is all it takes); None when no class declares it."""
    for cls in BUILTIN_SPECS:
        if cls.kind == kind:
            return cls
    definitions = _declaring(kind)
    return definitions[-1] if definitions else None  # the newest one


def spec_kinds() -> list[str]:
    """The data kinds that have a spec class: the built-in ones, then the plugins' own."""
    kinds = [cls.kind for cls in BUILTIN_SPECS]
    for cls in _subclasses():
        kind = cls.__dict__.get("kind")
        if kind and kind not in kinds:
            kinds.append(kind)
    return kinds


# ------------------------------------------------------------------------------ item checks


def _describe(value: Any) -> str:
    shape = tuple(getattr(value, "shape", ()))
    return f"{type(value).__name__} {getattr(value, 'dtype', '')} shape {shape}".replace("  ", " ")


def _check_frames(
    value: Any,
    spec: DataSpec,
    dims: tuple[int, ...],
    what: str,
    size: tuple[int, int] | None = None,
) -> str | None:
    import torch

    height, width = size or spec.size  # None: the spec's
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return f"{what} must be a float tensor, got {_describe(value)}"
    if value.dim() not in dims:
        return (
            f"{what} has shape {tuple(value.shape)}; expected {'/'.join(map(str, dims))} dimensions"
        )
    if tuple(value.shape[-3:]) != (spec.channels, height, width):
        return (
            f"{what} has shape {tuple(value.shape)}; the spec says C,H,W = "
            f"{spec.channels},{height},{width}"
        )
    low, high = float(value.min()), float(value.max())
    if low < 0.0 or high > 1.0:
        return (
            f"{what} values lie in [{low:.3g}, {high:.3g}]; sources return [0, 1] and never "
            "normalise (the model normalises with spec.mean/spec.std)"
        )
    return None


def _check_label(value: Any, spec: DataSpec, what: str) -> str | None:
    import torch

    label = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    if label.is_floating_point() or label.dim() != 0:
        return f"{what} must be an integer class id, got {_describe(value)}"
    if not 0 <= int(label) < spec.num_classes:
        return f"{what} {int(label)} is not a class id in 0..{spec.num_classes - 1}"
    return None


def check_item(kind: str, item: Any, spec: DataSpec, split: str) -> str | None:
    """What is wrong with one item of ``split`` by the contract of ``kind``; None when it fits
    (or when ``kind`` is a plugin's own, which the core does not know)."""
    import torch

    if kind not in ("image", "video", "segmentation"):
        return None
    if not isinstance(item, tuple | list) or len(item) < 2:
        return f"{split} item must be a tuple (input, target, ...), got {type(item).__name__}"
    if kind == "image":
        return _check_frames(item[0], spec, (3,), f"{split} image") or _check_label(
            item[1], spec, f"{split} label"
        )
    if kind == "video":
        dims = (4,) if split == "train" else (4, 5)
        return _check_frames(item[0], spec, dims, f"{split} clip") or _check_label(
            item[1], spec, f"{split} label"
        )
    frames, masks = item[0], item[1]
    size = spec.split_size(split)
    problem = _check_frames(frames, spec, (4,), f"{split} frames", size)
    if problem:
        return problem
    if not isinstance(masks, torch.Tensor) or masks.dtype != torch.int64:
        return f"{split} masks must be an int64 tensor of class ids, got {_describe(masks)}"
    if tuple(masks.shape) != (frames.shape[0], *size):
        return f"{split} masks have shape {tuple(masks.shape)}; expected T,H,W = {(frames.shape[0], *size)}"
    return None


CLASSIFICATION_KINDS = ("image", "video")  # kinds whose targets are one class per item


def require_classes(class_names: Sequence[str], where: str, what: str = "class folder") -> None:
    """A DataError naming ``where`` unless there are at least two classes: a classifier of one
    class learns nothing (and its metrics fail). ``what`` names a class in the message."""
    if len(class_names) == 1:
        raise DataError(
            f"{where}: only one {what} ({class_names[0]}); classification needs at least 2"
        )
    if not class_names:
        raise DataError(f"{where}: no {what}s; classification needs at least 2")


@dataclass
class DataBundle:
    """Train, validation and test data sets (map-style) plus their spec, the files a source
    skipped as unreadable (``(file, reason)``; they are counted in the run summary) and,
    optionally, what each split holds (``items``: the run folder's ``splits.json`` records it and
    ``rnnkit run --resume`` refuses data that changed; without it only the counts are compared)
    and where each split comes from (``origins``: split -> one line, e.g. ``"carved from
    clips/train/ (20% per class, split seed 0)"``; the run's first lines, ``summary.json``,
    ``splits.json`` and ``rnnkit check-data`` show it)."""

    train: Dataset  # map-style; items by the kind's format (rnnvision_kit.dataspec)
    val: Dataset  # map-style
    test: Dataset  # map-style
    spec: DataSpec  # the kind's typed spec, saved in checkpoints
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) not read
    items: dict[str, list[str]] | None = None  # split -> each item's file path or stable id
    origins: dict[str, str] | None = None  # split -> where it comes from, in one line


def check_bundle(bundle: DataBundle, kind: str, source: str) -> None:
    """Check the spec's kind, the classes of a classification kind and the first item of each
    split against the kind's contract; a DataError naming ``source`` and the problem otherwise."""
    expected = spec_type(kind)
    if expected is not None and not isinstance(bundle.spec, expected):
        raise DataError(
            f"data source {source!r}: its spec is {type(bundle.spec).__name__}; {kind} data "
            f"needs a {expected.__name__}"
        )
    if kind in CLASSIFICATION_KINDS:
        require_classes(bundle.spec.class_names, f"data source {source!r}", "class")
    for split in ("train", "val", "test"):
        dataset = getattr(bundle, split)
        if len(dataset) == 0:
            raise DataError(f"data source {source!r}: the {split} split is empty")
        problem = check_item(kind, _first_readable(dataset), bundle.spec, split)
        if problem:
            raise DataError(f"data source {source!r}: {problem}")


def _first_readable(dataset: Any, tries: int = 8) -> Any:
    """The first item that can be read (unreadable ones are the runner's to count)."""
    for index in range(min(len(dataset), tries)):
        try:
            return dataset[index]
        except UnreadableItem as error:
            last = error
    raise DataError(f"the first {min(len(dataset), tries)} items are unreadable ({last})")
