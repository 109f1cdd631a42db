"""The video-source contract: what video tasks need from a source of kind ``video`` beyond the
item format (docs/plugins.md, "Video sources").

- ``list_samples=`` (registered with the source): ``list_samples(config) -> Listing``, the
  labelled videos per split, nothing decoded; ``rnnkit check-data`` scans them.
- each split of the source's ``DataBundle`` is a :class:`VideoDataset`: ``samples`` names the
  video of each item (``predictions_<split>.jsonl`` records it) and ``set_epoch(epoch)`` draws
  the epoch's clips (the runner calls it on the training set before each epoch).

``check_video_source`` turns a breach into one ``DataError`` line naming the source and the parts
it lacks, instead of a run that trains on one fixed clip per video or writes no predictions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from numbers import Integral
from typing import Any, Protocol, runtime_checkable

from rnnvision_kit.data.listing import SPLITS, Listing
from rnnvision_kit.errors import DataError

WHERE = "see 'Video sources' in docs/plugins.md"


@runtime_checkable
class VideoDataset(Protocol):
    """A split (train, val or test) of a video source: a map-style data set whose items follow
    the ``video`` item format, plus ``samples`` and ``set_epoch``."""

    # one (path, label) per item, in item order: the video file (or frame folder) of item i
    samples: Sequence[tuple[str, int]]

    def set_epoch(self, epoch: int) -> None:
        """Make this epoch's random choices (which clip of each video, its augmentation); the
        runner calls it on the training set before each epoch. A wrapper passes it on to the
        data set it wraps, or every epoch trains on the same clip of each video."""
        ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class ListSamples(Protocol):
    """``list_samples=`` of a video source, called by ``rnnkit check-data``."""

    def __call__(self, config: Any) -> Listing:
        """The labelled videos of each split for the run config ``config`` (a ``RunConfig``),
        and the class names, without opening a video."""
        ...


def video_dataset_problems(dataset: object) -> list[str]:
    """What ``dataset`` lacks of :class:`VideoDataset`, in words (empty when nothing)."""
    problems = []
    samples = getattr(dataset, "samples", None)
    size = len(dataset) if hasattr(dataset, "__len__") else None
    if samples is None:
        problems.append("no samples")
    elif not isinstance(samples, Sequence):
        problems.append(f"samples that are a {type(samples).__name__}, not a list")
    elif size is not None and len(samples) != size:
        problems.append(f"{len(samples)} samples for {size} items")
    elif samples and not _is_sample(samples[0]):
        problems.append(f"samples[0] = {samples[0]!r}, not a (path, label) pair")
    if not callable(getattr(dataset, "set_epoch", None)):
        problems.append("no set_epoch(epoch)")
    return problems


def _is_sample(sample: Any) -> bool:
    return (
        isinstance(sample, Sequence)
        and len(sample) == 2
        and isinstance(sample[0], str | os.PathLike)
        and isinstance(sample[1], Integral)
        and not isinstance(sample[1], bool)
    )


def video_source_problems(bundle: Any, list_samples: Any) -> list[str]:
    """What a video source with data ``bundle`` and ``list_samples=`` lacks, one phrase per
    part; splits with the same problems share one phrase."""
    problems = [] if callable(list_samples) else ["it registers no list_samples="]
    by_problem: dict[str, list[str]] = {}
    for split in SPLITS:
        dataset = getattr(bundle, split)
        found = video_dataset_problems(dataset)
        if found:
            what = f"{' and '.join(found)} ({type(dataset).__name__})"
            by_problem.setdefault(what, []).append(split)
    for what, splits in by_problem.items():
        names = ", ".join(splits[:-1]) + " and " + splits[-1] if len(splits) > 1 else splits[0]
        sets = "data sets have" if len(splits) > 1 else "data set has"
        problems.append(f"its {names} {sets} {what}")
    return problems


def check_video_source(source: str, bundle: Any, list_samples: Any) -> None:
    """Raise a one-line DataError naming ``source`` and what it lacks of the video-source
    contract (``list_samples=``, each split's ``samples`` and ``set_epoch``)."""
    problems = video_source_problems(bundle, list_samples)
    if problems:
        raise DataError(
            f"data source {source!r} breaks the video-source contract: "
            f"{'; '.join(problems)} ({WHERE})"
        )


def listing_of(source: str, list_samples: Any, config: Any) -> Listing:
    """``list_samples(config)`` of video source ``source``, checked: registered, and a
    ``Listing`` with the three splits; otherwise a one-line DataError naming the source."""
    breach = f"data source {source!r} breaks the video-source contract"
    if not callable(list_samples):
        raise DataError(f"{breach}: it registers no list_samples= ({WHERE})")
    listing = list_samples(config)
    if not isinstance(listing, Listing):
        raise DataError(
            f"{breach}: list_samples returned {type(listing).__name__}, not a Listing ({WHERE})"
        )
    missing = [split for split in SPLITS if split not in listing.splits]
    if missing:
        raise DataError(f"{breach}: its Listing has no {' or '.join(missing)} split ({WHERE})")
    return listing
