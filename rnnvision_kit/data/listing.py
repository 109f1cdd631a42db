"""What a video source lists before anything is decoded: labelled videos per split, and the class
names (``Listing``). ``rnnkit check-data`` scans a listing; ``build_clip_bundle`` reads one as
clip data sets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a listing needs no torch
    from rnnvision_kit.data.video_datasets import VideoSample

SPLITS = ("train", "val", "test")


@dataclass
class Listing:
    """Labelled videos (files or frame folders) per split, and the class names.

    A video source's ``list_samples(config)`` returns one (nothing is opened);
    ``build_clip_bundle(listing, config)`` turns it into the source's ``DataBundle``.
    """

    splits: dict[str, list[VideoSample]]  # "train", "val", "test" -> (path, label) samples
    class_names: list[str]  # label i is class_names[i]
    root: str = ""  # the folder the videos were listed from, named in errors
    fps: float | None = None  # frame rate of every video, where the source knows one
    # (path, reason) of the files in the class folders that were not taken (never opened)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # split -> where it comes from, in one line (DataBundle.origins): "the val/ folder", "carved
    # from train/ (20% per class, split seed 0)", "split file testlist01.txt"
    origins: dict[str, str] = field(default_factory=dict)
    carved: list[str] = field(default_factory=list)  # splits drawn by a seeded split, not files

    def all_samples(self) -> list[VideoSample]:
        """Every split's samples, train first."""
        return [sample for split in SPLITS for sample in self.splits.get(split, [])]
