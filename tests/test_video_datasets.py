"""Video data sets on real files: folder/UCF101/frame-folder listings, clip data set, data scan."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from rnnvision_kit import ConfigError, DataError, UnreadableItem
from rnnvision_kit.data import (
    ClipAugment,
    ProbeCache,
    SkipUnreadable,
    VideoClipDataset,
    VideoSample,
    collate_readable,
    list_framefolder,
    list_ucf101,
    list_videofolder,
    probe_frame_folder,
    read_frame_folder,
    scan_videos,
    write_video,
)
from tests.bad_videos import write_bad_videos

H, W = 48, 64


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))


def index_frames(count: int, offset: int = 0) -> np.ndarray:
    """Uniform frames whose red/green levels encode ``offset + index``."""
    frames = np.full((count, H, W, 3), 128, dtype=np.uint8)
    for i in range(count):
        k = offset + i
        frames[i, ..., 0] = (k % 16) * 16 + 8
        frames[i, ..., 1] = (k // 16) * 16 + 8
    return frames


def decode_indices(clip: torch.Tensor) -> list[int]:
    """Invert :func:`index_frames` on ``(T, 3, H, W)`` frames, uint8 or float in [0, 1]."""
    if clip.dtype != torch.uint8:
        clip = clip * 255
    means = clip[:, :2, 8:-8, 8:-8].float().mean(dim=(2, 3))
    return [int(r // 16) + 16 * int(g // 16) for r, g in means.tolist()]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """root/<class>/ with 3 good videos per class (30 frames, label-coded offsets)."""
    root = tmp_path / "videos"
    for label, name in enumerate(("jump", "walk")):
        (root / name).mkdir(parents=True)
        for k in range(3):
            write_video(root / name / f"v{k}.mp4", index_frames(30, offset=100 * label), fps=10)
    (root / "walk" / "notes.txt").write_text("not a video suffix: ignored")
    return root


def _dataset(samples: list, **kwargs: object) -> VideoClipDataset:
    kwargs.setdefault("num_frames", 4)
    kwargs.setdefault("probe_cache", ProbeCache(Path(os.environ["RNNKIT_CACHE"]) / "probe"))
    return VideoClipDataset(samples, **kwargs)


# --- listings ----------------------------------------------------------------------------------


def test_list_videofolder(folder: Path) -> None:
    (folder / "empty_class").mkdir()
    (folder / "walk" / "clip.WEBM").write_bytes(b"x")  # suffix match is case-insensitive
    samples, classes = list_videofolder(folder)
    assert classes == ["empty_class", "jump", "walk"]
    assert all(isinstance(s, VideoSample) for s in samples)
    names = sorted((Path(s.path).name, s.label) for s in samples)
    assert names == sorted(
        [(f"v{k}.mp4", 1) for k in range(3)]
        + [(f"v{k}.mp4", 2) for k in range(3)]
        + [("clip.WEBM", 2)]
    )


def test_list_videofolder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'nope'}: data folder does not")):
        list_videofolder(tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.mp4").write_bytes(b"")
    with pytest.raises(DataError, match="no class folders"):
        list_videofolder(tmp_path / "flat")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="no video files"):
        list_videofolder(tmp_path / "empty")


# Lists a folder in a child process that cannot bypass file permissions: as root it first drops
# CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (capset), so chmod 000 denies it too, as for any user.
_LIST_WITHOUT_DAC_OVERRIDE = """
import ctypes, json, os, sys

if os.geteuid() == 0:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF  # all but CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    for name, _ in Data._fields_:
        setattr(data[0], name, getattr(data[0], name) & keep)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")

from rnnvision_kit.data import list_videofolder

root, locked = sys.argv[1:]
samples, classes = list_videofolder(root)
print(json.dumps({
    "readable": os.access(locked, os.R_OK),
    "classes": classes,
    "samples": [[str(s.path), s.label] for s in samples],
}))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="needs Linux (capset, so that it also runs as root)",
)
def test_unreadable_class_folder_is_skipped_with_warning(folder: Path) -> None:
    locked = folder / "walk"
    locked.chmod(0)
    try:
        child = subprocess.run(
            [sys.executable, "-c", _LIST_WITHOUT_DAC_OVERRIDE, str(folder), str(locked)],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            timeout=120,
        )
    finally:
        locked.chmod(0o755)
    assert child.returncode == 0, child.stderr
    listed = json.loads(child.stdout)
    assert not listed["readable"]  # the premise: the child cannot read the folder, root or not
    assert f"{locked}: unreadable folder skipped (Permission denied)" in child.stderr
    assert listed["classes"] == ["jump", "walk"]  # its label stays: the other labels keep theirs
    assert {label for _, label in listed["samples"]} == {0} and len(listed["samples"]) == 3


def _ucf_layout(root: Path, with_subdir: bool = True) -> Path:
    splits = root / "ucfTrainTestlist" if with_subdir else root
    splits.mkdir(parents=True, exist_ok=True)
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n")
    (splits / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_a1.avi 1\nHandstandPushups/v_h1.avi 2\nHandstandPushups/v_h2.avi 2\n"
    )
    (splits / "testlist01.txt").write_text("ApplyEyeMakeup/v_a2.avi\nHandStandPushups/v_h3.avi\n")
    return splits


def test_list_ucf101(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ucf"
    _ucf_layout(root)
    frames = index_frames(10)
    for rel in ("ApplyEyeMakeup/v_a1.avi", "HandstandPushups/v_h1.avi", "ApplyEyeMakeup/v_a2.avi"):
        (root / "videos" / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / "videos" / rel, frames, fps=10)
    (root / "HandStandPushups").mkdir()
    write_video(root / "HandStandPushups" / "v_h3.avi", frames, fps=10)  # directly under root

    train, classes = list_ucf101(root, fold=1, split="train")
    assert classes == ["ApplyEyeMakeup", "HandstandPushups"]
    assert [(Path(p).relative_to(root).as_posix(), y) for p, y in train] == [
        ("videos/ApplyEyeMakeup/v_a1.avi", 0),
        ("videos/HandstandPushups/v_h1.avi", 1),
        ("HandstandPushups/v_h2.avi", 1),  # missing: kept, the data set skips it with a warning
    ]
    test, _ = list_ucf101(root, split="test")
    assert [(Path(p).relative_to(root).as_posix(), y) for p, y in test] == [
        ("videos/ApplyEyeMakeup/v_a2.avi", 0),
        ("HandStandPushups/v_h3.avi", 1),  # label from the (case-insensitive) class folder
    ]
    dataset = _dataset(train)
    assert "v_h2.avi: file not found" in capsys.readouterr().err
    assert len(dataset) == 2 and len(dataset.skipped) == 1


def test_list_ucf101_missing_files(tmp_path: Path) -> None:
    root = tmp_path / "ucf"
    root.mkdir()
    with pytest.raises(DataError, match="classInd.txt not found") as caught:
        list_ucf101(root)
    assert "ucfTrainTestlist" in str(caught.value) and "trainlist01.txt" in str(caught.value)
    splits = _ucf_layout(root, with_subdir=False)
    with pytest.raises(DataError, match="none of the 3 videos"):
        list_ucf101(root)
    (splits / "trainlist01.txt").unlink()
    with pytest.raises(DataError, match=re.escape(f"{splits / 'trainlist01.txt'}: split file")):
        list_ucf101(root)
    with pytest.raises(DataError, match="trainlist02.txt"):
        list_ucf101(root, fold=2)


def test_framefolder_listing_reader_and_dataset(tmp_path: Path) -> None:
    root = tmp_path / "frames"
    for label, name in enumerate(("a", "b")):
        video = root / name / "vid0"
        video.mkdir(parents=True)
        for i, image in enumerate(index_frames(12, offset=50 * label)):
            suffix = "jpg" if label == 0 else "png"
            Image.fromarray(image).save(video / f"img_{i:05d}.{suffix}", quality=95)
    samples, classes = list_framefolder(root)
    assert classes == ["a", "b"] and [s.label for s in samples] == [0, 1]
    info = probe_frame_folder(samples[1].path, fps=12.5)
    assert (info.num_frames, info.fps, info.width, info.height) == (12, 12.5, W, H)
    clip = read_frame_folder(samples[1].path, [0, 5, 11, 30], size=(24, 32))
    assert clip.shape == (4, 3, 24, 32) and decode_indices(clip) == [50, 55, 61, 61]
    dataset = _dataset(samples, num_frames=4, stride=3, mode="uniform", num_clips=1)
    assert decode_indices(dataset[0][0][0]) == [1, 4, 7, 10] and dataset[1][1] == 1
    with pytest.raises(DataError, match="zero frames"):
        probe_frame_folder(tmp_path)


# --- the clip data set -------------------------------------------------------------------------


def test_dataset_modes_shapes_and_frames(folder: Path) -> None:
    samples, _ = list_videofolder(folder)
    random_ds = _dataset(samples, num_frames=4, stride=2, size=(24, 32))
    clip, label = random_ds[4]
    assert clip.shape == (4, 3, 24, 32) and clip.dtype == torch.float32
    assert float(clip.min()) >= 0.0 and float(clip.max()) <= 1.0
    assert label == samples[4].label

    uniform_ds = _dataset(samples, num_frames=4, stride=2, mode="uniform", num_clips=3)
    clips, label = uniform_ds[0]
    assert clips.shape == (3, 4, 3, H, W)
    assert [decode_indices(c) for c in clips] == [[0, 2, 4, 6], [12, 14, 16, 18], [23, 25, 27, 29]]

    segment_ds = _dataset(samples, num_frames=5, mode="segment", seed=None)
    assert decode_indices(segment_ds[3][0]) == [103, 109, 115, 121, 127]  # jump: offset 100
    got = decode_indices(_dataset(samples, num_frames=5, mode="segment")[0][0])
    assert all(6 * k <= i < 6 * (k + 1) for k, i in enumerate(got))
    # data.test_clips with segment sampling: N TSN clips at offsets within the segments
    tsn = _dataset(samples, num_frames=5, mode="segment", seed=None, num_clips=3)[0][0]
    assert tsn.shape == (3, 5, 3, H, W)
    assert [decode_indices(c) for c in tsn] == [
        [1, 7, 13, 19, 25],
        [3, 9, 15, 21, 27],
        [5, 11, 17, 23, 29],
    ]
    # training clips stay one per video
    assert _dataset(samples, num_frames=5, mode="segment", num_clips=3)[0][0].shape == (5, 3, H, W)


def test_dataset_randomness_is_reproducible(folder: Path) -> None:
    samples, _ = list_videofolder(folder)
    one = _dataset(samples, num_frames=3, stride=2, seed=5)
    two = _dataset(samples, num_frames=3, stride=2, seed=5)
    first = [decode_indices(one[i][0]) for i in range(len(one))]
    assert first == [decode_indices(two[i][0]) for i in range(len(two))]
    for run in first:
        assert run[1] - run[0] == 2 and run[2] - run[1] == 2
    two.set_epoch(1)
    epoch1 = [decode_indices(two[i][0]) for i in range(len(two))]
    assert epoch1 != first
    assert [one.clip_indices(i) for i in range(len(one))] != [
        _dataset(samples, num_frames=3, stride=2, seed=6).clip_indices(i) for i in range(len(one))
    ]


def test_dataset_same_clips_for_any_worker_count(folder: Path) -> None:
    samples, _ = list_videofolder(folder)
    dataset = _dataset(samples, num_frames=3, stride=3, size=(24, 32), seed=11)
    dataset.set_epoch(2)

    def run(workers: int) -> torch.Tensor:
        loader = DataLoader(dataset, batch_size=2, num_workers=workers)
        return torch.cat([clips for clips, _ in loader])

    assert torch.equal(run(0), run(2))


def test_dataset_augments_with_one_seeded_draw_per_clip(folder: Path) -> None:
    """The same frames are chosen with and without augmentation; the draw depends only on
    (seed, epoch, index), so a fresh data set (a resumed run, a worker) repeats it; data sets
    without a seed (evaluation) are not augmented."""
    samples, _ = list_videofolder(folder)
    flip = ClipAugment(hflip=True)
    plain = _dataset(samples, num_frames=3, stride=2, seed=5)
    flipped = _dataset(samples, num_frames=3, stride=2, seed=5, augment=flip)
    for epoch in range(3):
        plain.set_epoch(epoch)
        flipped.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i][0], flipped[i][0]
            assert torch.equal(b, a) or torch.equal(b, a.flip(-1))
    strong = ClipAugment(crop_scale=(0.3, 0.8), hflip=True, jitter=0.5)
    one = _dataset(samples, num_frames=3, stride=2, size=(24, 32), seed=5, augment=strong)
    one.set_epoch(2)
    two = _dataset(samples, num_frames=3, stride=2, size=(24, 32), seed=5, augment=strong)
    two.set_epoch(2)
    clips = [one[i][0] for i in range(len(one))]
    assert all(torch.equal(c, two[i][0]) for i, c in enumerate(clips))
    assert all(c.shape == (3, 3, 24, 32) and c.min() >= 0 and c.max() <= 1 for c in clips)
    two.set_epoch(3)
    assert not any(torch.equal(c, two[i][0]) for i, c in enumerate(clips))
    loader = DataLoader(one, batch_size=2, num_workers=2)
    assert torch.equal(torch.cat([c for c, _ in loader]), torch.stack(clips))
    fixed = _dataset(samples, num_frames=3, seed=None, augment=strong)
    assert fixed.augment is strong
    assert torch.equal(fixed[0][0], _dataset(samples, num_frames=3, seed=None)[0][0])


def test_dataset_skips_bad_files_with_one_warning_each(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, _ = list_videofolder(folder)
    bad = list(write_bad_videos(tmp_path / "bad", Path(good[0].path)).values())
    short = tmp_path / "short.mkv"
    write_video(short, index_frames(3), fps=10)  # readable, shorter than the clip
    samples = [*good[:3], *[(str(p), 0) for p in bad], (str(short), 1), *good[3:]]
    capsys.readouterr()
    dataset = _dataset(samples, num_frames=6, stride=2)
    messages = capsys.readouterr().err.strip().splitlines()
    assert len(messages) == len(bad)
    for path in bad:
        assert sum(str(path) in m for m in messages) == 1
    assert [p for p, _ in dataset.skipped] == [str(p) for p in bad]
    assert len(dataset) == len(good) + 1
    items = [dataset[i] for i in range(len(dataset))]
    assert [y for _, y in items] == [s[1] for s in samples if Path(s[0]) not in bad]
    assert decode_indices(items[3][0]) == [0, 2, 1, 0, 2, 1]  # short video loops
    # on_error="raise" stops at the first bad file instead
    with pytest.raises(DataError, match=re.escape(str(bad[0]))):
        _dataset(samples, on_error="raise")


def test_file_broken_after_probing_is_reported_not_hidden(folder: Path) -> None:
    samples, _ = list_videofolder(folder)
    dataset = _dataset(samples, num_frames=4)
    victim = Path(dataset.samples[1].path)
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])  # truncated mid-stream after the probe
    with pytest.raises(UnreadableItem) as caught:
        dataset[1]
    assert caught.value.path == str(victim) and str(victim) in str(caught.value)
    assert dataset.skipped == []  # the data set does not hide it: the caller counts it
    # training: the next readable clip stands in, and the failure travels with it
    training = SkipUnreadable(dataset, replace=True)
    (clip, label), failures = training[1]
    assert label == dataset.samples[2].label and clip.shape == (4, 3, H, W)
    assert [(f.index, f.path) for f in failures] == [(1, str(victim))]
    assert training[1][1] == ()  # known bad: skipped without a second read or report
    # evaluation: nothing stands in for it
    evaluation = SkipUnreadable(dataset, replace=False)
    batch = collate_readable([evaluation[0], evaluation[1], evaluation[2]])
    assert batch.batch[0].shape == (2, 4, 3, H, W) and len(batch.failures) == 1
    assert batch.batch[1].tolist() == [dataset.samples[0].label, dataset.samples[2].label]


def test_dataset_rejects_bad_options(folder: Path) -> None:
    samples, _ = list_videofolder(folder)
    for kwargs in ({"mode": "dense"}, {"short_policy": "x"}, {"on_error": "ignore"}, {"stride": 0}):
        with pytest.raises(ConfigError):
            _dataset(samples, **kwargs)


# --- scan --------------------------------------------------------------------------------------


def test_scan_videos_reports_problems_and_counts(folder: Path, tmp_path: Path) -> None:
    good, classes = list_videofolder(folder)
    bad = list(write_bad_videos(tmp_path / "bad", Path(good[0].path)).values())
    short = tmp_path / "short.mp4"
    write_video(short, index_frames(4), fps=10)
    samples = [*good, *[(str(p), 1) for p in bad], (str(short), 0)]
    report = scan_videos(samples, clip_span=16, class_names=classes)
    assert report.num_files == len(samples) and report.num_ok == len(good) + 1
    assert not report.ok
    problems = dict(report.problems)
    assert problems[str(bad[0])] == "empty file (0 bytes)"
    assert problems[str(bad[3])] == "no video stream"
    assert problems[str(bad[1])].startswith("not a readable video")
    assert report.short == [(str(short), "4 frames < clip span 16")]
    assert report.class_counts == {"jump": 4, "walk": 3}
    assert report.problem_counts() == {
        "empty file": 1,
        "not a readable video": 2,
        "no video stream": 1,
        "shorter than clip span": 1,
    }
    rows = report.rows()
    assert rows[0] == ("class", "jump", "4 videos")
    assert ("problem", str(bad[3]), "no video stream") in rows
    assert rows[-1] == ("total", "readable", f"{len(good) + 1}/{len(samples)}")
    assert all(len(row) == len(report.HEADER) for row in rows)
