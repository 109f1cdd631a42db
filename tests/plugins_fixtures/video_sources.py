"""A third party's video sources and video task, for the video-source contract (docs/plugins.md,
"Video sources"): ``dots`` keeps it, and three sources each lack one part of it. The task
``dots-action`` (video-action's Task with settings of its own) shows a ``VideoDataConfig``
subclass as a task's data settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnkit_video.config import VideoModelConfig

from rnnvision_kit import (
    DataBundle,
    RegisterDataSource,
    RegisterMetric,
    RegisterTask,
    RunConfig,
    TrainConfig,
    VideoSpec,
    hookimpl,
    lazy,
    setting,
)
from rnnvision_kit.data import Listing, VideoDataConfig, VideoSample

CLASSES = ("left", "right")
SIZE = 16


class Dots:
    """Clips of a dot moving left (label 0) or right (1) over ``frames`` RGB frames of 16x16,
    on a row drawn from ``(index, epoch)`` in training; val/test items carry their index."""

    def __init__(self, split: str, videos: int, frames: int) -> None:
        self.samples = [VideoSample(f"dots/{split}/{i:03d}.mp4", i % 2) for i in range(videos)]
        self.frames, self.training, self.epoch = frames, split == "train", 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        import torch

        label = self.samples[index].label
        row = 2 + (index * 7 + (self.epoch if self.training else 0) * 3) % (SIZE - 4)
        clip = torch.zeros(self.frames, 3, SIZE, SIZE)
        for t in range(self.frames):
            clip[t, :, row, 3 + 2 * t if label == 1 else 12 - 2 * t] = 1.0
        return (clip, label) if self.training else (clip, label, index)


class Cached:
    """A wrapper that passes ``samples`` on but not ``set_epoch``: breaks the contract."""

    def __init__(self, dataset: Dots) -> None:
        self.dataset, self.samples = dataset, dataset.samples

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return self.dataset[index]


class Unnamed(Cached):
    """A wrapper that passes ``set_epoch`` on but names no samples: breaks the contract."""

    def __init__(self, dataset: Dots) -> None:
        self.dataset = dataset
        self.set_epoch = dataset.set_epoch


def dots_listing(config: RunConfig) -> Listing:
    """``list_samples=`` of the dots sources (the files are names only: nothing reads them)."""
    sizes = {"train": 32, "val": 8, "test": 8}
    splits = {s: Dots(s, n, 1).samples for s, n in sizes.items()}
    return Listing(splits, list(CLASSES), root="dots")


def _dots(config: RunConfig) -> tuple[Dots, Dots, Dots]:
    listing = dots_listing(config)
    frames = config.data.num_frames
    return tuple(Dots(s, len(listing.splits[s]), frames) for s in ("train", "val", "test"))


def _spec(config: RunConfig) -> VideoSpec:
    d = config.data
    return VideoSpec(CLASSES, 3, SIZE, SIZE, (0.5,) * 3, (0.25,) * 3, num_frames=d.num_frames)


def dots(config: RunConfig) -> DataBundle:
    return DataBundle(*_dots(config), _spec(config))


def dots_no_epoch(config: RunConfig) -> DataBundle:
    return DataBundle(*(Cached(d) for d in _dots(config)), _spec(config))


def dots_no_samples(config: RunConfig) -> DataBundle:
    train, val, test = _dots(config)
    return DataBundle(Unnamed(train), val, test, _spec(config))


@dataclass
class DotsDataConfig(VideoDataConfig):
    """dots-action's ``data.*``: the video sources' settings, dots by default."""

    source: str = setting("dots", nonempty=True)  # a source of kind video
    batch_size: int = setting(8, ge=1)  # training clips per step
    num_frames: int = setting(4, ge=1)  # frames per clip (T)
    size: int = setting(SIZE, ge=8, le=1024)  # frames are SIZE x SIZE
    frame_cache: bool | str = False  # nothing to cache: the clips are drawn, not decoded


def defaults() -> RunConfig:
    return RunConfig(
        task="dots-action",
        data=DotsDataConfig(),
        model=VideoModelConfig(feature_dim=16, hidden_size=16),
        train=TrainConfig(epochs=1, lr=3e-3, monitor="val/acc", mode="max", threads=1),
    )


@hookimpl
def rnnkit_register_tasks(register: RegisterTask) -> None:
    register(
        "dots-action",
        lazy("rnnkit_video.task:VideoActionTask"),
        config=defaults,
        kind="video",
        description="video-action's model on the dots, with settings of its own",
        capabilities=("predict", "check-data", "report", "stream", "export"),
    )


@hookimpl
def rnnkit_register_datasets(register: RegisterDataSource) -> None:
    reads = ("num_frames",)
    for name, factory, listed in (
        ("dots", dots, True),
        ("dots-no-epoch", dots_no_epoch, True),
        ("dots-no-samples", dots_no_samples, True),
        ("dots-no-listing", dots, False),
    ):
        extra = {"list_samples": dots_listing} if listed else {}
        register(name, factory, kind="video", description="a dot moving", reads=reads, **extra)


@hookimpl
def rnnkit_register_metrics(register: RegisterMetric) -> None:
    """video-action's Task reads its metrics as PLUGIN:NAME: this plugin registers them too."""
    for name in ("clip_acc", "clip_top5", "predictions"):
        register(name, lazy("rnnkit_video.metrics:create_metric", name), kinds=("video",))
