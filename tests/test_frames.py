"""``FrameSource``: the one place that tells a video file from a frame folder (and a camera or a
URL from both), on real files written with PyAV and real folders of PNG and JPEG frames; a
missing path and an unreadable file are one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnnvision_kit import DataError
from rnnvision_kit.data.frames import FrameSource, probe_sources, source_kind
from rnnvision_kit.data.livestream import open_frames
from rnnvision_kit.data.video import ProbeCache, probe_video, read_frames, write_video
from tests.bad_videos import cut_off, write_moov_first

H, W = 32, 48


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))


def index_frames(count: int) -> np.ndarray:
    """Uniform frames whose red level encodes the frame index (up to 16 frames)."""
    frames = np.full((count, H, W, 3), 128, dtype=np.uint8)
    for i in range(count):
        frames[i, ..., 0] = i * 16 + 8
    return frames


def indices_of(frames: torch.Tensor) -> list[int]:
    """Invert :func:`index_frames` on ``(T, 3, H, W)`` uint8 frames."""
    return [int(v // 16) for v in frames[:, 0, 4:-4, 4:-4].float().mean(dim=(1, 2)).tolist()]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", index_frames(12), fps=10)


def frame_folder(folder: Path, suffix: str, count: int = 12) -> Path:
    """Frames ``1.png`` .. ``12.png`` (unpadded: natural order differs from name order)."""
    folder.mkdir(parents=True)
    for i, image in enumerate(index_frames(count)):
        Image.fromarray(image).save(folder / f"{i + 1}{suffix}")
    return folder


def test_kinds_are_decided_once_here(tmp_path: Path, video: Path) -> None:
    folder = frame_folder(tmp_path / "frames", ".png")
    assert FrameSource(video).kind == "file" and not FrameSource(video).is_folder
    assert FrameSource(folder).kind == "folder" and FrameSource(folder).is_folder
    assert FrameSource(tmp_path / "missing.mp4").kind == "file"  # its readers say what is wrong
    assert source_kind("rtsp://camera:554/live") == "url"
    assert source_kind("/dev/null") == "device"  # under /dev, not a regular file
    assert FrameSource(video).reader != FrameSource(folder).reader  # frame caches key on it


def test_names_for_output_folders(tmp_path: Path, video: Path) -> None:
    assert FrameSource(video).name == "clip"
    assert FrameSource(f"{tmp_path / 'frames'}/").name == "frames"
    assert FrameSource("rtsp://cam.local:554/live/1").name == "cam.local_554_live_1"
    assert FrameSource("/dev/video0").name == "video0"


def test_a_video_file_reads_as_read_frames_does(video: Path) -> None:
    source = FrameSource(video)
    info = source.probe()
    assert info == probe_video(video) and info.num_frames == 12
    frames = source.read([0, 5, 11, 20], info, size=(16, 24))
    assert frames.shape == (4, 3, 16, 24) and frames.dtype == torch.uint8
    assert torch.equal(frames, read_frames(video, [0, 5, 11, 20], info, size=(16, 24)))
    assert indices_of(source.read(range(12), info)) == list(range(12))
    assert source.decode(info).ok and source.decode(info).frames == 12


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_frame_folder_reads_in_natural_order(tmp_path: Path, suffix: str) -> None:
    source = FrameSource(frame_folder(tmp_path / "frames", suffix))
    assert [Path(f).name for f in source.frame_files()[:3]] == [
        f"1{suffix}",
        f"2{suffix}",
        f"3{suffix}",
    ]
    info = source.probe(fps=12.5)
    assert (info.num_frames, info.fps, info.height, info.width) == (12, 12.5, H, W)
    assert info.duration == pytest.approx(12 / 12.5)
    frames = source.read(range(14), info)  # past the end: the last frame
    assert frames.shape == (14, 3, H, W)
    assert indices_of(frames) == [*range(12), 11, 11]  # 2 before 10, JPEG's loss included
    assert source.read([3], size=(8, 12)).shape == (1, 3, 8, 12)
    result = source.decode(info)
    assert result.ok and result.frames == 12


def test_the_stream_reads_a_folder_as_the_offline_reader_does(tmp_path: Path) -> None:
    source = FrameSource(frame_folder(tmp_path / "frames", ".png"))
    streamed = torch.stack([frame.image for frame in open_frames(source.path, (H, W))])
    assert torch.equal(streamed, source.read(range(12)).float() / 255)


def test_a_missing_path_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "clip.mp4"
    for read in (
        lambda: FrameSource(missing).probe(),
        lambda: FrameSource(missing).read([0]),
        lambda: FrameSource(missing).probe(cache=ProbeCache()),
    ):
        with pytest.raises(DataError) as error:
            read()
        assert str(error.value) == f"{missing}: file not found"


def test_an_unreadable_file_is_one_line_naming_it(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path, words in ((text, "not a readable video"), (empty, "empty file (0 bytes)")):
        with pytest.raises(DataError) as error:
            FrameSource(path).probe()
        message = str(error.value)
        assert message.startswith(f"{path}: {words}") and "\n" not in message


def test_an_unreadable_frame_folder_is_one_line_naming_the_frame(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=f"^{empty}: zero frames"):
        FrameSource(empty).probe()
    folder = frame_folder(tmp_path / "frames", ".jpg", count=6)
    data = (folder / "4.jpg").read_bytes()
    (folder / "4.jpg").write_bytes(data[: len(data) // 3])  # the header reads, the pixels do not
    source = FrameSource(folder)
    info = source.probe()
    with pytest.raises(DataError) as error:
        source.read(range(6), info)
    message = str(error.value)
    assert message.startswith(f"{folder}: decoding fails at frame 3 of 6 (t=0.12 s): 4.jpg: ")
    assert "\n" not in message
    assert source.decode(info).problem() == message.removeprefix(f"{folder}: ")
    with pytest.raises(DataError, match="not a folder of frames"):
        FrameSource(tmp_path / "clip.mp4").frame_files()


def test_a_file_cut_off_fails_where_it_stops(tmp_path: Path) -> None:
    path = cut_off(write_moov_first(tmp_path / "cut.mp4", frames=30))
    source = FrameSource(path)
    info = source.probe()
    with pytest.raises(DataError) as error:
        source.read([info.num_frames - 1], info)
    found = source.decode(info)
    assert not found.ok and str(error.value) == f"{path}: {found.problem()}"


def test_probe_sources_keeps_the_order_and_the_errors(tmp_path: Path, video: Path) -> None:
    folder = frame_folder(tmp_path / "frames", ".png")
    missing = tmp_path / "missing.mp4"
    paths = [str(video), str(folder), str(missing), str(video)]
    results = probe_sources(paths, ProbeCache(tmp_path / "probe"), fps=10.0)
    assert [type(r).__name__ for r in results] == [
        "VideoInfo",
        "VideoInfo",
        "DataError",
        "VideoInfo",
    ]
    assert results[1].fps == 10.0 and results[0] == results[3]
    assert str(results[2]) == f"{missing}: file not found"
