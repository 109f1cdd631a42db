"""Items that cannot be read while a run loads data: left out (or, in training, replaced) and
reported to the main process with the batch, so they are counted once across DataLoader workers.

A data set signals a file it cannot read with :class:`~rnnvision_kit.errors.UnreadableItem`
(under its ``on_error="skip"`` policy). :class:`SkipUnreadable` wraps the data set: every item
becomes ``(item, failures)`` and :func:`collate_readable` turns a list of those into a
:class:`ReadableBatch`. Known bad indices live in shared memory, so workers (persistent or not)
and later epochs do not read a bad file again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate

from rnnvision_kit.errors import DataError, UnreadableItem

__all__ = [
    "Failure",
    "ReadableBatch",
    "SkipUnreadable",
    "collate_readable",
    "count_note",
    "count_reasons",
    "reason_kind",
    "skipped_note",
]


@dataclass(frozen=True)
class Failure:
    """One unreadable item: its index in the data set, the file and the reason."""

    index: int
    path: str
    reason: str


@dataclass
class ReadableBatch:
    """A collated batch of the readable items (None when none was) and the items that were not."""

    batch: Any
    failures: tuple[Failure, ...] = ()


class SkipUnreadable(Dataset):
    """``dataset`` whose items are ``(item, failures)``.

    ``replace=True`` (training) reads the next readable index instead of a bad one, so batches
    keep their size; ``replace=False`` (evaluation) gives ``(None, failures)``: the item is left
    out and nothing stands in for it. Only :class:`UnreadableItem` is caught; other errors rise.

    :meth:`set_epoch` reaches the wrapped data set's own ``set_epoch`` in this process and in
    persistent DataLoader workers (through shared memory, before a worker's next item), so a
    source's data set needs no shared memory of its own to draw new clips each epoch.
    """

    def __init__(self, dataset: Dataset, *, replace: bool) -> None:
        self.dataset, self.replace = dataset, replace
        self.bad = torch.zeros(len(dataset), dtype=torch.bool).share_memory_()  # type: ignore[arg-type]
        self._epoch = torch.full((1,), -1, dtype=torch.int64).share_memory_()
        self._epoch_seen = -1  # the epoch this process's copy of ``dataset`` was last told

    def set_epoch(self, epoch: int) -> None:
        """Tell the wrapped data set (if it has ``set_epoch``) the epoch, here and in workers."""
        self._epoch.fill_(int(epoch))
        self._pass_epoch()

    def _pass_epoch(self) -> None:
        epoch = int(self._epoch.item())
        if epoch != self._epoch_seen and epoch >= 0:
            self._epoch_seen = epoch
            set_epoch = getattr(self.dataset, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.bad)

    def mark_bad(self, indices: Sequence[int]) -> None:
        """Skip these indices from now on (in this process and in workers started later)."""
        for index in indices:
            if 0 <= index < len(self.bad):
                self.bad[index] = True

    def __getitem__(self, index: int) -> tuple[Any, tuple[Failure, ...]]:
        self._pass_epoch()  # a persistent worker learns a new epoch here
        failures: list[Failure] = []
        count = len(self.bad)
        for step in range(count if self.replace else 1):
            j = (index + step) % count
            if bool(self.bad[j]):
                continue
            try:
                return self.dataset[j], tuple(failures)
            except UnreadableItem as error:
                self.bad[j] = True
                failures.append(Failure(j, error.path, error.reason))
        if self.replace:
            raise DataError(f"no readable item left among {count} samples")
        return None, tuple(failures)


def collate_readable(items: Sequence[tuple[Any, tuple[Failure, ...]]]) -> ReadableBatch:
    """Collate the readable items of a list of :class:`SkipUnreadable` items."""
    readable = [item for item, _ in items if item is not None]
    failures = tuple(f for _, fails in items for f in fails)
    return ReadableBatch(default_collate(readable) if readable else None, failures)


# Where a reason's details start: a parenthesis, a colon, a semicolon or a frame position.
_DETAIL = re.compile(r" \(|: |; | at frame ")


def reason_kind(reason: str) -> str:
    """A skip reason without its details, to count files by: ``"not a video file (FFmpeg
    reads it as png_pipe)"`` -> ``"not a video file"``, ``"decoding fails at frame 4 of 30
    (t=0.40 s): ..."`` -> ``"decoding fails"``."""
    return _DETAIL.split(reason, maxsplit=1)[0].strip() or reason


def count_reasons(skipped: Iterable[tuple[str, str]]) -> dict[str, int]:
    """How many ``(path, reason)`` files have each kind of reason, most frequent first."""
    return dict(Counter(reason_kind(why) for _, why in skipped).most_common())


def count_note(skipped: Iterable[tuple[str, str]]) -> str:
    """``(path, reason)`` files counted by reason: ``"2 not a video file, 1 dangling link"``."""
    return ", ".join(f"{n} {kind}" for kind, n in count_reasons(skipped).items())


def skipped_note(skipped: Sequence[tuple[str, str]]) -> str:
    """One line counting skipped files by reason: ``"skipped 3 file(s): 2 not a video file,
    1 dangling link"``."""
    return f"skipped {len(skipped)} file(s): {count_note(skipped)}"
