"""The files a run found unreadable while reading its data, across DataLoader workers and DDP
ranks: each warned about once, skipped from then on, saved in checkpoints, listed in the summary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.utils.data import Dataset

from rnnvision_kit.data.readable import Failure, SkipUnreadable
from rnnvision_kit.errors import warn


class UnreadableLedger:
    """Unreadable files per split: ``path -> (reason, index)``; the guards it hands out skip them."""

    def __init__(self, state: Iterable[Any] = ()) -> None:
        self.entries: dict[str, dict[str, tuple[str, int]]] = {}
        self._guards: dict[str, SkipUnreadable] = {}
        for split, path, reason, index in state:
            self.entries.setdefault(split, {})[path] = (reason, int(index))

    def guard(self, split: str, dataset: Dataset, *, replace: bool) -> SkipUnreadable:
        """``dataset`` wrapped for reading ``split``; the same wrapper (and its shared record of
        bad indices) every epoch while the data set is the same object."""
        guard = self._guards.get(split)
        if guard is None or guard.dataset is not dataset or guard.replace != replace:
            guard = SkipUnreadable(dataset, replace=replace)
            guard.mark_bad([index for _, index in self.entries.get(split, {}).values()])
            self._guards[split] = guard
        return guard

    def record(self, split: str, failures: Iterable[Failure]) -> None:
        """Note failures from a batch; a file not seen before gets one warning line."""
        known = self.entries.setdefault(split, {})
        fresh = [f for f in failures if f.path not in known]
        for failure in fresh:
            known[failure.path] = (failure.reason, failure.index)
            warn(f"skipping {failure.path}: {failure.reason} (counted in summary.json)")
        guard = self._guards.get(split)
        if guard is not None and fresh:
            guard.mark_bad([f.index for f in fresh])

    def merge_ranks(self, split: str) -> None:
        """Under DDP, every rank learns the files the others found unreadable in ``split``."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        mine = [Failure(i, p, r) for p, (r, i) in self.entries.get(split, {}).items()]
        gathered: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, mine)
        others = [f for part in gathered for f in part or []]
        known = self.entries.setdefault(split, {})
        new = [f for f in others if f.path not in known]
        for failure in new:  # already warned about on the rank that read it
            known[failure.path] = (failure.reason, failure.index)
        guard = self._guards.get(split)
        if guard is not None and new:
            guard.mark_bad([f.index for f in new])

    def count(self, split: str) -> int:
        """Unreadable files found in ``split``."""
        return len(self.entries.get(split, {}))

    def listed(self) -> list[tuple[str, str]]:
        """``(file, reason)`` of every unreadable file, once."""
        seen: dict[str, str] = {}
        for files in self.entries.values():
            for path, (reason, _) in files.items():
                seen.setdefault(path, reason)
        return list(seen.items())

    def state(self) -> list[list[Any]]:
        """Plain lists for a checkpoint (``weights_only`` loads them)."""
        return [
            [split, path, reason, index]
            for split, files in self.entries.items()
            for path, (reason, index) in files.items()
        ]
