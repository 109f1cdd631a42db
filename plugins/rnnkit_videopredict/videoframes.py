"""The data source ``videoframes`` of kind ``frames``: any folder of videos (or of frame
folders), unlabelled, cut into non-overlapping clips of ``context + horizon`` frames (validation
and test: ``context + eval_horizon``), resized to ``size`` x ``size``, grey or RGB.

Splits: ``PATH/train``, ``PATH/val``, ``PATH/test`` when those folders exist (val carved from
train when absent); otherwise whole videos carved off with ``data.val_fraction`` and
``data.test_fraction`` (every k-th video in sorted order). A video shorter than a clip is skipped
and counted in the run summary.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from rnnkit_videopredict.config import PredictConfig, PredictDataConfig
from rnnkit_videopredict.data import spec_of
from rnnkit_videopredict.models import convert_channels
from rnnvision_kit import DataBundle, DataError, UnreadableItem
from rnnvision_kit.data import FRAME_SUFFIXES, VIDEO_SUFFIXES, FrameSource

Clip = tuple[str, int]  # (video file or frame folder, first frame)


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(
        p.suffix.lower() in FRAME_SUFFIXES for p in path.iterdir() if p.is_file()
    )


def find_videos(folder: Path) -> list[str]:
    """Video files and frame folders under ``folder`` (any depth), sorted."""
    return [
        str(path)
        for path in sorted(folder.rglob("*"))
        if (path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES) or _is_frame_folder(path)
    ]


def carve(videos: list[str], fraction: float) -> tuple[list[str], list[str]]:
    """(rest, carved): every k-th video carved off so that about ``fraction`` of them are."""
    if fraction <= 0 or len(videos) < 2:
        return videos, []
    every = max(2, round(1 / fraction))
    carved = videos[every // 2 :: every] or videos[-1:]
    return [v for v in videos if v not in carved], carved


def check_one_size(folder: str) -> None:
    """A frame folder is one video: a DataError naming it when its frames differ in size (read
    from the image headers only)."""
    from PIL import Image

    sizes: dict[tuple[int, int], str] = {}
    for file in FrameSource(folder).frame_files():
        try:
            with Image.open(file) as image:
                sizes.setdefault(image.size, Path(file).name)
        except OSError:
            continue  # an unreadable frame is reported where it is read
        if len(sizes) > 1:
            (a, first), (b, other) = list(sizes.items())[:2]
            raise DataError(
                f"{folder}: frames of mixed sizes ({first} is {a[0]}x{a[1]}, {other} is "
                f"{b[0]}x{b[1]}); a frame folder holds one video, all its frames of one size"
            )


def clips_of(
    videos: list[str], length: int, skipped: list[tuple[str, str]]
) -> tuple[list[Clip], dict[str, int]]:
    """Non-overlapping clips of ``length`` frames of each video; short or unreadable videos are
    added to ``skipped``. Also returns each video's frame count."""
    clips: list[Clip] = []
    counts: dict[str, int] = {}
    for video in videos:
        if FrameSource(video).is_folder:
            check_one_size(video)
        try:
            count = FrameSource(video).probe().num_frames
        except DataError as error:
            skipped.append((video, str(error).removeprefix(f"{video}: ")))
            continue
        if count < length:
            skipped.append((video, f"{count} frames, shorter than a {length}-frame clip"))
            continue
        counts[video] = count
        clips.extend((video, start) for start in range(0, count - length + 1, length))
    return clips, counts


class VideoClips(Dataset):
    """Clips ``(frames T,C,H,W float32 in [0, 1], index)`` read from their videos."""

    def __init__(self, clips: list[Clip], length: int, size: int, channels: int) -> None:
        self.clips, self.length, self.size, self.channels = clips, length, size, channels

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, start = self.clips[index]
        try:
            frames = FrameSource(path).read(
                range(start, start + self.length), size=(self.size, self.size), threads=False
            )
        except DataError as error:
            raise UnreadableItem(path, str(error).removeprefix(f"{path}: ")) from None
        return convert_channels(frames.float().div_(255), self.channels), index


def _splits(folder: Path, d: PredictDataConfig) -> dict[str, list[str]]:
    named = {s: folder / s for s in ("train", "val", "test") if (folder / s).is_dir()}
    if "train" in named and "test" in named:
        train = find_videos(named["train"])
        if "val" in named:
            return {
                "train": train,
                "val": find_videos(named["val"]),
                "test": find_videos(named["test"]),
            }
        train, val = carve(train, d.val_fraction)
        return {"train": train, "val": val, "test": find_videos(named["test"])}
    videos = find_videos(folder)
    if not videos:
        raise DataError(f"{folder}: no videos ({', '.join(VIDEO_SUFFIXES)}) or frame folders")
    rest, test = carve(videos, d.test_fraction)
    train, val = carve(rest, d.val_fraction / max(1e-9, 1 - d.test_fraction))
    return {"train": train, "val": val, "test": test}


def open_videoframes(config: PredictConfig) -> DataBundle:
    """Clips of the videos under ``data.path``."""
    d = config.data
    folder = d.require_path("clips/")
    skipped: list[tuple[str, str]] = []
    datasets: dict[str, VideoClips] = {}
    origins: dict[str, str] = {}
    for split, videos in _splits(folder, d).items():
        length = d.context + (d.horizon if split == "train" else d.test_horizon)
        clips, counts = clips_of(videos, length, skipped)
        if not clips:
            raise DataError(
                f"{folder}: no {split} clips of {length} frames (data.context + "
                f"{'data.horizon' if split == 'train' else 'data.eval_horizon'})"
            )
        datasets[split] = VideoClips(clips, length, d.size, d.channels)
        origins[split] = f"{len(clips)} clips of {length} frames from {len(counts)} videos"
    return DataBundle(
        datasets["train"],
        datasets["val"],
        datasets["test"],
        spec_of(d),
        skipped=skipped,
        origins=origins,
    )
