"""The video-action plugin's moving-digits data set: layout, determinism, time reversal, caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rnnkit_video import moving_digits as md

from rnnvision_kit.data import cache_dir, list_videofolder, probe_video, read_frames
from rnnvision_kit.data.cache import MARKER

TINY = {"videos_per_class": (2, 1, 1), "num_frames": 6, "size": 32}


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.mp4"))


def test_layout_classes_and_decodable_videos(tmp_path: Path) -> None:
    root = md.generate_moving_digits(tmp_path / "md", seed=3, **TINY)
    assert len(md.CLASSES) == 10 and {c for pair in md.PAIRS for c in pair} == set(md.CLASSES)
    for split, count in zip(md.SPLITS, TINY["videos_per_class"], strict=True):
        samples, classes = list_videofolder(root / split)
        assert classes == list(md.CLASSES)  # label order = sorted folder names
        assert len(samples) == 10 * count
    info = probe_video(root / "train" / "left" / "0000.mp4")
    assert (info.num_frames, info.width, info.height) == (6, 32, 32)
    assert read_frames(info.path, range(6), info).shape == (6, 3, 32, 32)


def test_same_seed_same_files_and_labels(tmp_path: Path) -> None:
    a = md.generate_moving_digits(tmp_path / "a", seed=1, **TINY)
    b = md.generate_moving_digits(tmp_path / "b", seed=1, **TINY)
    assert _listing(a) == _listing(b)
    samples_a, _ = list_videofolder(a / "train")
    samples_b, _ = list_videofolder(b / "train")
    assert [(Path(p).relative_to(a).as_posix(), y) for p, y in samples_a] == [
        (Path(p).relative_to(b).as_posix(), y) for p, y in samples_b
    ]
    for rel in ("train/grow/0001.mp4", "test/appear/0000.mp4"):
        assert np.array_equal(read_frames(a / rel, range(6)), read_frames(b / rel, range(6)))
    c = md.generate_moving_digits(tmp_path / "c", seed=2, **TINY)
    rel = "train/grow/0001.mp4"
    assert not np.array_equal(read_frames(a / rel, range(6)), read_frames(c / rel, range(6)))


def test_pairs_are_time_reversals_of_each_other() -> None:
    digits = md._load_digits()
    for first, second in md.PAIRS:
        one = md._render_video(digits[7], first, np.random.default_rng(5), 8, 32)
        two = md._render_video(digits[7], second, np.random.default_rng(5), 8, 32)
        assert np.array_equal(one, two[::-1])
        assert not np.array_equal(one, two)  # the order really differs


def test_ensure_generates_once_into_the_cache(tmp_path: Path) -> None:
    root = md.ensure_moving_digits(**TINY)
    assert root.parent == tmp_path / "cache" / "moving-digits"
    assert (root / MARKER).is_file()
    files = _listing(root)
    assert len(files) == 10 * 4
    stamp = (root / "train" / "up" / "0000.mp4").stat().st_mtime_ns
    assert md.ensure_moving_digits(**TINY) == root
    assert (root / "train" / "up" / "0000.mp4").stat().st_mtime_ns == stamp  # not rewritten
    leftovers = [p.name for p in root.parent.iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


def test_interrupted_generation_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(md, "write_video", explode)
    with pytest.raises(KeyboardInterrupt):
        md.ensure_moving_digits(**TINY)
    parent = cache_dir("moving-digits")
    assert list(parent.iterdir()) == []
