"""The decoded-frame cache on real mp4 files written and decoded with PyAV: hits after the first
epoch, the same tensors as decoding, invalidation, DataLoader workers, the size bound, and a
folder that cannot be written."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from rnnvision_kit.data import FrameCache, ProbeCache, VideoClipDataset, write_video
from rnnvision_kit.data.framecache import ENTRY_NAME, FOLDER, MARKER
from tests.conftest import CliRunner

SIZE = (16, 16)


def _video(path: Path, frames: int, seed: int = 0, side: int = 48) -> str:
    rng = np.random.default_rng(seed)
    write_video(path, rng.integers(0, 256, (frames, side, side, 3), dtype=np.uint8), fps=10)
    return str(path)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int]]:
    root = tmp_path_factory.mktemp("videos")
    return [(_video(root / f"{i}.mp4", 14 + 3 * i, seed=i), i % 2) for i in range(4)]


def _dataset(
    samples: list[tuple[str, int]], tmp: Path, cache: FrameCache | None, **options: object
) -> VideoClipDataset:
    settings: dict = dict(num_frames=4, stride=2, size=SIZE, seed=3)
    settings.update(options)
    return VideoClipDataset(
        samples, probe_cache=ProbeCache(tmp / "probe"), frame_cache=cache, **settings
    )


def _epoch(dataset: VideoClipDataset, epoch: int) -> list[torch.Tensor]:
    dataset.set_epoch(epoch)
    return [dataset[i][0] for i in range(len(dataset))]


def _entries(folder: Path) -> list[Path]:
    """The entries of the cache given ``folder`` (they live in its own sub-folder)."""
    return sorted(p for p in (folder / FOLDER).glob("*.npy") if ENTRY_NAME.fullmatch(p.name))


def _temporary(folder: Path) -> list[Path]:
    return sorted((folder / FOLDER).glob(".tmp-*"))


@pytest.mark.parametrize(
    ("mode", "clips", "seed"),
    [("random", 1, 3), ("uniform", 3, 3), ("segment", 1, 3), ("random", 1, None)],
)
def test_second_epoch_reads_the_cache_and_gives_the_decoded_tensors(
    videos: list[tuple[str, int]], tmp_path: Path, mode: str, clips: int, seed: int | None
) -> None:
    cache = FrameCache(tmp_path / "frames")
    plain = _dataset(videos, tmp_path, None, mode=mode, num_clips=clips, seed=seed)
    cached = _dataset(videos, tmp_path, cache, mode=mode, num_clips=clips, seed=seed)
    for epoch in range(3):
        expected, got = _epoch(plain, epoch), _epoch(cached, epoch)
        assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
        if epoch == 0:
            assert cache.stats["decodes"] == len(videos) and cache.stats["hits"] == 0
    assert cache.stats["decodes"] == len(videos)  # epochs 2 and 3 decoded nothing
    assert cache.stats["hits"] == 2 * len(videos) and cache.stats["writes"] == len(videos)
    entries = _entries(tmp_path / "frames")
    assert len(entries) == len(videos) and not _temporary(tmp_path / "frames")
    shapes = sorted(np.load(e, mmap_mode="r").shape[0] for e in entries)
    if mode == "uniform" or seed is None:  # fixed clips: just their frames
        assert max(shapes) <= clips * 4
    else:  # random clips: the whole video
        assert shapes == sorted(cached.infos[i].num_frames for i in range(len(videos)))
    # Another run (a new cache object, e.g. the next `rnnkit run`) starts with hits.
    again = FrameCache(tmp_path / "frames")
    _epoch(_dataset(videos, tmp_path, again, mode=mode, num_clips=clips, seed=seed), 0)
    assert again.stats == {"hits": len(videos), "decodes": 0, "writes": 0, "refused": 0}


def test_frame_folders_are_cached_too(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "clip"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(9):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    cache = FrameCache(tmp_path / "frames")
    plain = _dataset([(str(folder), 0)], tmp_path, None)
    cached = _dataset([(str(folder), 0)], tmp_path, cache)
    for epoch in range(2):
        assert torch.equal(_epoch(plain, epoch)[0], _epoch(cached, epoch)[0])
    assert cache.stats["decodes"] == 1 and cache.stats["hits"] == 1


def test_a_changed_file_is_a_new_entry(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    _video(path, 12, seed=1)
    cache = FrameCache(tmp_path / "frames")
    before = _epoch(_dataset([(str(path), 0)], tmp_path, cache), 0)[0]
    _video(path, 12, seed=2)  # same name, new content (and size, mtime)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    dataset = _dataset([(str(path), 0)], tmp_path, cache)
    after = _epoch(dataset, 0)[0]
    assert cache.stats["decodes"] == 2 and not torch.equal(before, after)
    assert torch.equal(after, _epoch(_dataset([(str(path), 0)], tmp_path, None), 0)[0])
    # Only the mtime changes: a new entry too.
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    _epoch(_dataset([(str(path), 0)], tmp_path, cache), 0)
    assert cache.stats["decodes"] == 3 and len(_entries(tmp_path / "frames")) == 3
    # Another training size: another entry.
    _epoch(_dataset([(str(path), 0)], tmp_path, cache, size=(8, 8)), 0)
    assert cache.stats["decodes"] == 4


def test_workers_share_the_cache_and_write_whole_files(
    videos: list[tuple[str, int]], tmp_path: Path
) -> None:
    """Two workers get the same videos at once (each index twice in a row): both may decode and
    write one entry; readers only ever see whole files, and the clips equal decoded ones."""
    cache = FrameCache(tmp_path / "frames")
    cached = _dataset(videos, tmp_path, cache)
    plain = _dataset(videos, tmp_path, None)
    order = [i for i in range(len(videos)) for _ in range(2)]
    for epoch in range(2):
        cached.set_epoch(epoch)
        loader = DataLoader(cached, batch_size=1, sampler=order, num_workers=2)
        got = [clip[0] for clip, _ in loader]
        expected = _epoch(plain, epoch)
        assert all(torch.equal(got[k], expected[i]) for k, i in enumerate(order))
        assert len(_entries(tmp_path / "frames")) == len(videos)
        assert not _temporary(tmp_path / "frames")
    for entry in _entries(tmp_path / "frames"):
        array = np.load(entry, mmap_mode="r")
        assert array.dtype == np.uint8 and array.shape[1:] == (3, *SIZE)
    # The workers' decodes reached the disk: the main process now only hits.
    assert _epoch(cached, 2) and cache.stats == {"hits": 4, "decodes": 0, "writes": 0, "refused": 0}


def test_long_videos_are_decoded_as_without_a_cache(
    videos: list[tuple[str, int]], tmp_path: Path
) -> None:
    cache = FrameCache(tmp_path / "frames", whole_max_frames=16)  # videos have 14..23 frames
    plain, cached = _dataset(videos, tmp_path, None), _dataset(videos, tmp_path, cache)
    for epoch in range(2):
        assert all(
            torch.equal(a, b)
            for a, b in zip(_epoch(plain, epoch), _epoch(cached, epoch), strict=True)
        )
    assert cache.stats["decodes"] == 1 and cache.stats["refused"] == 2 * 3


def test_size_bound_evicts_earlier_runs_then_refuses_with_one_warning(
    videos: list[tuple[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "frames"
    first = FrameCache(folder)
    _epoch(_dataset(videos[2:], tmp_path, first), 0)
    old = _entries(folder)
    for path in old:  # an earlier run's entries, last used an hour ago
        os.utime(path, (path.stat().st_atime - 3600, path.stat().st_mtime - 3600))
    capsys.readouterr()
    # Room for videos 0 and 1 (14 and 17 frames at 16x16, + .npy headers), not for video 2 too.
    frame = 3 * 16 * 16
    bound = FrameCache(folder, max_bytes=(14 + 17) * frame + 1000)
    plain, cached = _dataset(videos[:3], tmp_path, None), _dataset(videos[:3], tmp_path, bound)
    for epoch in range(2):
        assert all(
            torch.equal(a, b)
            for a, b in zip(_epoch(plain, epoch), _epoch(cached, epoch), strict=True)
        )
    assert not any(p.exists() for p in old)  # the earlier run's entries made room
    assert bound.usage() <= bound.max_bytes and len(_entries(folder)) == 2
    assert bound.full and bound.stats["refused"] == 2  # video 2, in both epochs
    assert bound.stats["writes"] == 2 and bound.stats["hits"] == 2  # what fits keeps hitting
    warnings = [line for line in capsys.readouterr().err.splitlines() if "frame cache full" in line]
    assert len(warnings) == 1 and "data.frame_cache_gb" in warnings[0]


def _users_files(folder: Path, age: float, lookalikes: bool = False) -> dict[Path, bytes]:
    """Files a user keeps in ``folder``, last changed ``age`` seconds ago, with their bytes: an
    array and temporary-looking files; ``lookalikes``: also files named like the cache's own."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        folder / "features.npy": np.arange(5000, dtype=np.float32).tobytes(),
        folder / ".tmp-draft.txt": b"draft",
        folder / ".tmp-keep.txt": b"keep",
    }
    if lookalikes:  # outside a folder with the cache's marker, names alone decide nothing
        files[folder / f"{'ab' * 20}.npy"] = b"not an entry"
        files[folder / f".tmp-{'cd' * 20}-1-0123abcd.npy"] = b"not a writer's"
    for path, data in files.items():
        path.write_bytes(data)
        os.utime(path, (time.time() - age, time.time() - age))
    return files


def test_the_cache_deletes_only_its_own_files_in_its_own_folder(
    videos: list[tuple[str, int]], tmp_path: Path
) -> None:
    """Issue 17: a user's `.npy` and `.tmp-*` files beside the cache's folder and inside it
    survive the scans and an eviction; the cache's own old entries and a crashed writer's old
    temporary file are deleted."""
    given = tmp_path / "mine"
    two_days = 2 * 86400.0
    kept = _users_files(given, two_days, lookalikes=True)
    first = FrameCache(given)
    assert first.directory == given / FOLDER
    assert (given / FOLDER / MARKER).read_text().startswith("rnnvision-kit frame cache")
    _epoch(_dataset(videos[2:], tmp_path, first), 0)
    old = _entries(given)
    for path in old:  # an earlier run's entries, last used an hour ago
        os.utime(path, (path.stat().st_atime - 3600, path.stat().st_mtime - 3600))
    kept.update(_users_files(given / FOLDER, two_days))
    crashed = first._tmp_file(given / FOLDER, "ef" * 20)
    crashed.write_bytes(b"half an entry")
    os.utime(crashed, (time.time() - 7200, time.time() - 7200))
    frame = 3 * 16 * 16  # room for videos 0 and 1 only: the earlier entries must go
    bound = FrameCache(given, max_bytes=(14 + 17) * frame + 1000)
    _epoch(_dataset(videos[:3], tmp_path, bound), 0)
    assert not any(p.exists() for p in old) and not crashed.exists()
    assert bound.stats["writes"] == 2 and len(_entries(given)) == 2
    assert {p: p.read_bytes() for p in kept if p.exists()} == kept


def test_a_folder_of_the_same_name_that_is_not_a_cache_is_left_untouched(
    videos: list[tuple[str, int]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    assert FrameCache().directory == tmp_path / "cache" / "frames" / FOLDER  # the default
    given = tmp_path / "mine"
    kept = _users_files(given / FOLDER, 2 * 86400.0, lookalikes=True)
    capsys.readouterr()
    cache = FrameCache(given, max_bytes=1)
    err = capsys.readouterr().err
    assert err.count("rnnkit: warning:") == 1 and "not a frame cache folder" in err
    assert str(given / FOLDER) in err and cache.directory is None and not cache.writable
    plain, cached = _dataset(videos, tmp_path, None), _dataset(videos, tmp_path, cache)
    assert all(torch.equal(a, b) for a, b in zip(_epoch(plain, 0), _epoch(cached, 0), strict=True))
    assert cache.usage() == 0 and cache.stats["writes"] == 0 and not capsys.readouterr().err
    assert {p: p.read_bytes() for p in (given / FOLDER).iterdir()} == kept


def _no_space(handle: BinaryIO, array: np.ndarray) -> None:
    handle.write(array.tobytes()[:100])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_turns_writing_off_with_one_warning(
    videos: list[tuple[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = FrameCache(tmp_path / "frames", writer=_no_space)
    plain, cached = _dataset(videos, tmp_path, None), _dataset(videos, tmp_path, cache)
    for epoch in range(2):
        assert all(
            torch.equal(a, b)
            for a, b in zip(_epoch(plain, epoch), _epoch(cached, epoch), strict=True)
        )
    assert not cache.writable and cache.stats["writes"] == 0
    assert [p.name for p in (tmp_path / "frames" / FOLDER).iterdir()] == [MARKER]  # no partial file
    err = capsys.readouterr().err
    assert err.count("rnnkit: warning:") == 1 and "No space left on device" in err
    assert "frame cache off" in err


def test_an_unwritable_folder_warns_once_and_decodes(
    videos: list[tuple[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cache = FrameCache(blocker / "frames")  # tests run as root: a path under a file fails
    err = capsys.readouterr().err
    assert err.count("rnnkit: warning:") == 1 and "frame cache off" in err and str(blocker) in err
    plain, cached = _dataset(videos, tmp_path, None), _dataset(videos, tmp_path, cache)
    assert all(torch.equal(a, b) for a, b in zip(_epoch(plain, 0), _epoch(cached, 0), strict=True))
    assert cache.stats["refused"] == len(videos) and not capsys.readouterr().err


def test_training_goes_on_when_the_cache_folder_cannot_be_written(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # a setting that passes the check (its parent folder exists) but cannot be made: a dangling
    # link into a file (tests run as root, so permissions would not stop the writes)
    cache = tmp_path / "cache"
    cache.symlink_to(blocker / "frames")
    result = rnnkit(
        "run",
        "--task",
        "video-action",
        "--set",
        "data.videos_per_class=2",
        "--epochs",
        "2",
        "--set",
        "train.max_steps_per_epoch=1",
        "--set",
        f"data.frame_cache={cache}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("cannot write the frame cache") == 1
