"""Video I/O on real files written and decoded with PyAV: probe, seeking reads, clips, samplers."""

from __future__ import annotations

import json
import random
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from rnnvision_kit.data import video as video_module
from rnnvision_kit.data.samplers import (
    apply_short_policy,
    random_clip_indices,
    segment_indices,
    uniform_clip_indices,
)
from rnnvision_kit.data.video import (
    ProbeCache,
    VideoInfo,
    probe_video,
    read_clip,
    read_frames,
    write_video,
)
from rnnvision_kit.errors import DataError
from tests.bad_videos import write_bad_videos

H, W = 48, 64


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))


def index_frames(count: int) -> np.ndarray:
    """Uniform frames whose red/green levels encode the frame index (up to 256 frames)."""
    frames = np.full((count, H, W, 3), 128, dtype=np.uint8)
    for i in range(count):
        frames[i, ..., 0] = (i % 16) * 16 + 8
        frames[i, ..., 1] = (i // 16) * 16 + 8
    return frames


def decode_indices(clip: torch.Tensor) -> list[int]:
    """Invert :func:`index_frames` on a decoded ``(T, 3, H, W)`` clip (tolerates codec loss)."""
    means = clip[:, :2, 8:-8, 8:-8].float().mean(dim=(2, 3))
    return [int(r // 16) + 16 * int(g // 16) for r, g in means.tolist()]


def textured_frames(count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    return np.stack([np.roll(base, 3 * i, axis=1) for i in range(count)])


def decode_all(path: Path) -> torch.Tensor:
    with av.open(str(path)) as container:
        arrays = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    frames = index_frames(30)
    return {
        ext: write_video(root / f"v.{ext}", frames, fps=10) for ext in ("mp4", "avi", "mkv", "webm")
    }


@pytest.fixture(scope="module")
def long_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s at 25 fps with keyframes every 2 s (x264 default GOP would be 10 s)."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    frames = textured_frames(500)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"g": "50", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return path


# --- probe -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["mp4", "avi", "mkv", "webm"])
def test_probe_formats(videos: dict[str, Path], ext: str) -> None:
    info = probe_video(videos[ext])
    assert info == VideoInfo(str(videos[ext]), 3.0, 10.0, 30, W, H)


@pytest.mark.parametrize("ext", ["mkv", "webm"])
def test_probe_falls_back_to_duration_times_rate(videos: dict[str, Path], ext: str) -> None:
    with av.open(str(videos[ext])) as container:
        assert container.streams.video[0].frames == 0  # the header has no frame count
    assert probe_video(videos[ext]).num_frames == 30


def test_probe_bad_files(tmp_path: Path, videos: dict[str, Path]) -> None:
    bad = write_bad_videos(tmp_path / "bad", videos["mp4"])
    expected = {
        "zero": "empty file",
        "truncated": "not a readable video",
        "text": "not a readable video",
        "audio": "no video stream",
    }
    for key, path in bad.items():
        with pytest.raises(DataError) as caught:
            probe_video(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and expected[key] in message
        assert "\n" not in message
    with pytest.raises(DataError, match="file not found"):
        probe_video(tmp_path / "missing.mp4")


def test_probe_cache_persists_and_caches_failures(tmp_path: Path, videos: dict[str, Path]) -> None:
    bad = write_bad_videos(tmp_path / "bad", videos["mp4"])["text"]
    good = tmp_path / "good.mp4"
    good.write_bytes(videos["mp4"].read_bytes())
    cache = ProbeCache(tmp_path / "probe")
    assert cache.get(good).num_frames == 30
    with pytest.raises(DataError, match="not a readable video"):
        cache.get(bad)
    cache.save()
    stored = json.loads((tmp_path / "probe" / "probe.json").read_text())["entries"]
    assert "error" in stored[str(bad.resolve())] and "info" in stored[str(good.resolve())]

    # A new cache answers from the file: neither file is probed again.
    def no_probe(path: object) -> VideoInfo:
        raise AssertionError(f"probed {path} again")

    reloaded = ProbeCache(tmp_path / "probe")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(video_module, "probe_video", no_probe)
        assert reloaded.get(good).num_frames == 30
        with pytest.raises(DataError, match="not a readable video") as caught:
            reloaded.get(bad)
        assert str(caught.value).startswith(f"{bad}: ")
    # A changed file (size/mtime) is probed again.
    write_video(good, index_frames(12), fps=10)
    assert reloaded.get(good).num_frames == 12
    assert not list((tmp_path / "probe").glob(".probe-*"))  # no temp files left behind


# --- reading -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["mp4", "avi", "mkv", "webm"])
def test_read_frames_returns_the_wanted_frames(videos: dict[str, Path], ext: str) -> None:
    path = videos[ext]
    info = probe_video(path)
    for wanted in ([0, 1, 2], [12, 13, 17], [29, 5, 5, 20], [28, 40, 100]):
        clip = read_frames(path, wanted, info)
        assert clip.shape == (len(wanted), 3, H, W) and clip.dtype == torch.uint8
        assert decode_indices(clip) == [min(i, 29) for i in wanted]


def test_read_frames_without_info_and_resized(videos: dict[str, Path]) -> None:
    clip = read_frames(videos["mp4"], [3, 4], size=(24, 32), threads=False)
    assert clip.shape == (2, 3, 24, 32)
    assert decode_indices(clip) == [3, 4]
    assert read_frames(videos["mp4"], []).shape == (0, 3, H, W)


def test_seeking_from_the_middle_matches_full_decode(
    long_mp4: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = decode_all(long_mp4)
    assert len(reference) == 500
    info = probe_video(long_mp4)
    decoded = [0]
    original_next = video_module._Cursor.next

    def counting_next(self: object) -> object:
        result = original_next(self)
        decoded[0] += result is not None
        return result

    monkeypatch.setattr(video_module._Cursor, "next", counting_next)
    clip = read_frames(long_mp4, range(300, 316), info)
    assert torch.equal(clip, reference[300:316])
    assert decoded[0] <= 2 * 50 + 16  # from the keyframe before frame 300, not from frame 0

    decoded[0] = 0  # segment sampling across the video seeks per group
    wanted = segment_indices(500, 8)
    assert torch.equal(read_frames(long_mp4, wanted, info), reference[wanted])
    assert decoded[0] < 8 * 60

    rng = random.Random(1)
    for _ in range(6):
        wanted = [rng.randrange(520) for _ in range(rng.randint(1, 6))]
        expected = reference[[min(i, 499) for i in wanted]]
        assert torch.equal(read_frames(long_mp4, wanted, info, threads=False), expected)


def test_variable_frame_rate_selects_by_timestamp(tmp_path: Path) -> None:
    times_ms = [0, 40, 80, 210, 250, 490, 530, 900, 1000]  # frame k shows index k
    path = tmp_path / "vfr.mkv"
    frames = index_frames(len(times_ms))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for image, ms in zip(frames, times_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    info = probe_video(path)
    assert info.fps == 25.0
    # nominal index i is time i / 25 s: the last frame shown at or before it (+ half a frame)
    wanted = [0, 1, 2, 3, 5, 6, 12, 13, 20, 24, 25, 40]
    expected = [0, 1, 2, 2, 3, 4, 5, 6, 6, 7, 8, 8]
    assert decode_indices(read_frames(path, wanted, info)) == expected


def test_read_clip_stride_and_short_policies(videos: dict[str, Path]) -> None:
    path = videos["mkv"]
    info = probe_video(path)
    assert decode_indices(read_clip(path, 10, 5, stride=3, info=info)) == [10, 13, 16, 19, 22]
    looped = read_clip(path, 24, 6, stride=2, info=info, short_policy="loop")
    assert decode_indices(looped) == [24, 26, 28, 0, 2, 4]
    padded = read_clip(path, 24, 6, stride=2, info=info, short_policy="pad")
    assert decode_indices(padded) == [24, 26, 28, 29, 29, 29]
    with pytest.raises(DataError, match="short_policy"):
        read_clip(path, 0, 4, info=info, short_policy="wrap")


def test_read_frames_bad_file_raises_data_error(tmp_path: Path, videos: dict[str, Path]) -> None:
    bad = write_bad_videos(tmp_path / "bad", videos["mp4"])
    for path in bad.values():
        with pytest.raises(DataError, match=re.escape(str(path))):
            read_frames(path, [0, 1])


# --- writing -----------------------------------------------------------------------------------


def test_write_video_checks_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 47, 64, 3), np.uint8))
    with pytest.raises(DataError, match="shape"):
        write_video(tmp_path / "gray.mp4", np.zeros((2, 48, 64), np.uint8))
    with pytest.raises(DataError, match="uint8"):
        write_video(tmp_path / "float.mp4", np.zeros((2, 48, 64, 3), np.float32))
    with pytest.raises(DataError, match="suffix"):
        write_video(tmp_path / "x.gif", np.zeros((2, 48, 64, 3), np.uint8))
    path = write_video(tmp_path / "t.mp4", torch.from_numpy(index_frames(4)))
    assert decode_indices(decode_all(path)) == [0, 1, 2, 3]


# --- samplers ----------------------------------------------------------------------------------


def test_random_clip_indices_deterministic_and_in_range() -> None:
    for rng_a, rng_b in (
        (random.Random(3), random.Random(3)),
        (torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)),
    ):
        runs_a = [random_clip_indices(100, 8, 4, rng_a) for _ in range(50)]
        runs_b = [random_clip_indices(100, 8, 4, rng_b) for _ in range(50)]
        assert runs_a == runs_b
        starts = {run[0] for run in runs_a}
        assert len(starts) > 10 and min(starts) >= 0 and max(starts) <= 100 - 29
        assert all(run[i + 1] - run[i] == 4 for run in runs_a for i in range(7))
    assert random_clip_indices(10, 8, 2, random.Random(0)) == list(range(0, 16, 2))  # short


def test_uniform_clip_indices() -> None:
    clips = uniform_clip_indices(100, 4, 2, 3)
    assert clips == [[0, 2, 4, 6], [46, 48, 50, 52], [93, 95, 97, 99]]
    assert uniform_clip_indices(100, 4, 2, 1) == [[46, 48, 50, 52]]
    assert uniform_clip_indices(5, 4, 2, 2) == [[0, 2, 4, 6], [0, 2, 4, 6]]


def test_segment_indices() -> None:
    assert segment_indices(80, 8) == [5, 15, 25, 35, 45, 55, 65, 75]
    draws = [segment_indices(80, 8, random.Random(k)) for k in range(30)]
    assert draws[0] == segment_indices(80, 8, random.Random(0))
    for draw in draws:
        assert all(10 * k <= i < 10 * (k + 1) for k, i in enumerate(draw))
    assert len({tuple(d) for d in draws}) > 1
    assert segment_indices(3, 6) == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        segment_indices(0, 4)


def test_apply_short_policy() -> None:
    assert apply_short_policy([3, 4, 5, 6], 5, "loop") == [3, 4, 0, 1]
    assert apply_short_policy([3, 4, 5, 6], 5, "pad") == [3, 4, 4, 4]
    with pytest.raises(ValueError):
        apply_short_policy([0], 5, "bounce")
