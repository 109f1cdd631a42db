"""``set_epoch`` reaches a source's data set inside persistent DataLoader workers: a data set
that only stores the epoch on ``self`` (as docs/plugins.md's video-source contract shows) draws
new items each epoch with ``data.num_workers > 0`` too, not the first epoch's over again."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from rnnvision_kit.data.readable import SkipUnreadable, collate_readable


class EpochEcho(Dataset):
    """Items are the epoch this copy of the data set was last told."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor(self.epoch)


def test_a_plain_set_epoch_reaches_persistent_workers() -> None:
    guard = SkipUnreadable(EpochEcho(), replace=True)
    loader = DataLoader(
        guard, batch_size=4, num_workers=1, persistent_workers=True, collate_fn=collate_readable
    )
    seen = []
    for epoch in range(3):
        guard.set_epoch(epoch)
        (batch,) = list(loader)
        seen.append(batch.batch.tolist())
    assert seen == [[0] * 4, [1] * 4, [2] * 4]


def test_set_epoch_in_this_process_without_workers() -> None:
    data = EpochEcho()
    guard = SkipUnreadable(data, replace=True)
    guard.set_epoch(5)
    assert data.epoch == 5 and int(guard[0][0]) == 5
