"""Local data files are read as plain media files (issue 17): an ffconcat script, an HLS playlist
or an image under a video name is "not a video file", FFmpeg reads local files through its file
protocol only, any container PyAV reads is a video whatever its suffix (in sub-folders too), and
symlink loops, dangling links and FIFOs are counted by reason, never opened."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from rnnvision_kit import DataError
from rnnvision_kit.data import (
    ProbeCache,
    list_framefolder,
    list_videofolder,
    open_media,
    probe_video,
    read_frames,
    scan_videos,
    skipped_note,
    write_video,
)
from tests.bad_videos import (
    FifoWatch,
    write_container,
    write_ffconcat,
    write_hls,
    write_specials,
)
from tests.conftest import CliRunner

FRAMES = 10
FAKES = {  # files named like videos that are not, and why
    "concat.mp4": "not a video file (an ffconcat playlist)",
    "playlist.mp4": "not a video file (an HLS playlist)",
    "image.mp4": "not a video file (FFmpeg reads it as png_pipe)",
    "photo.mov": "not a video file (FFmpeg reads it as jpeg_pipe)",
}
NOT_TAKEN = {  # entries of a class folder that are never opened, and why
    "dangling.mp4": "dangling link",
    "fifo.mp4": "FIFO (not a regular file)",
    "loop.mp4": "symlink loop",
    "notes.txt": "not a video file (a .txt file)",
    "thumb.jpg": "not a video file (a .jpg file)",
}


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))


def _noise(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    return write_video(path, rng.integers(0, 256, (FRAMES, 32, 32, 3), np.uint8), fps=10)


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root/jump``: videos as .mp4, .m4v, .ts and, in a sub-folder, .mpg; the fakes; the
    entries never taken; a hidden file. ``root/wave``: four .mp4 videos."""
    root = tmp_path_factory.mktemp("media") / "videos"
    jump, wave = root / "jump", root / "wave"
    (jump / "deeper").mkdir(parents=True)
    wave.mkdir()
    for i in range(4):
        _noise(wave / f"w{i}.mp4", seed=i)
    _noise(jump / "v0.mp4", seed=10)
    write_container(jump / "v1.m4v", "mp4", "libx264", seed=11)
    write_container(jump / "v2.ts", "mpegts", "libx264", seed=12)
    write_container(jump / "deeper" / "v3.mpg", "mpeg", "mpeg1video", fps=25, seed=13)
    write_ffconcat(jump / "concat.mp4", "v0.mp4", "v1.m4v")
    write_hls(jump / "playlist.mp4", "v2.ts")
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3), np.uint8)
    Image.fromarray(pixels).save(jump / "image.mp4", format="PNG")
    Image.fromarray(pixels).save(jump / "photo.mov", format="JPEG")
    Image.fromarray(pixels).save(jump / "thumb.jpg")
    (jump / "notes.txt").write_text("recorded 2026-01-05\n")
    (jump / ".hidden.mp4").write_bytes(b"")
    write_specials(jump)
    return root


def test_playlists_and_images_under_a_video_name_are_not_video_files(
    messy: Path, tmp_path: Path
) -> None:
    jump = messy / "jump"
    with av.open(str(jump / "concat.mp4")) as container:  # what FFmpeg makes of it on its own
        assert container.format.name == "concat"
        assert sum(1 for _ in container.decode(video=0)) == 2 * FRAMES  # two other files
    for name, why in FAKES.items():
        with pytest.raises(DataError) as caught:
            probe_video(jump / name)
        assert str(caught.value) == f"{jump / name}: {why}"
        with pytest.raises(DataError, match=re.escape(why)):
            read_frames(jump / name, [0])
    shutil.copy(jump / "v2.ts", tmp_path / "v2.ts")
    playlist = shutil.copy(jump / "playlist.mp4", tmp_path / "live.m3u8")
    with open_media(playlist, plain=False) as container:  # under its own name FFmpeg plays it
        assert container.format.name == "hls"
    with pytest.raises(DataError, match="not a video file \\(an HLS playlist\\)"):
        probe_video(playlist)


def test_only_the_file_protocol_reads_local_data(
    messy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(messy / "jump")
    url = "concat:v2.ts|v2.ts"  # FFmpeg's concat protocol: two files read as one
    with av.open(url) as container:
        assert sum(1 for _ in container.decode(video=0)) == 2 * FRAMES
    with pytest.raises(av.FFmpegError):
        open_media(url, plain=False)  # the whitelist refuses it, plain media or not
    with pytest.raises(DataError, match="file not found"):
        probe_video(url)


def test_every_container_and_sub_folders_are_read_and_the_rest_counted(messy: Path) -> None:
    skipped: list[tuple[str, str]] = []
    with FifoWatch(messy / "jump" / "fifo.mp4") as fifo:
        samples, classes = list_videofolder(messy, skipped=skipped)
        report = scan_videos(samples, class_names=classes, probe_cache=ProbeCache())
    assert fifo.opened == 0
    assert classes == ["jump", "wave"]
    jump = {str(Path(s.path).relative_to(messy / "jump")) for s in samples if s.label == 0}
    assert jump == {"v0.mp4", "v1.m4v", "v2.ts", "deeper/v3.mpg", *FAKES}
    assert {Path(p).name: why for p, why in skipped} == NOT_TAKEN
    assert skipped_note(skipped) == (
        "skipped 5 file(s): 2 not a video file, 1 dangling link, 1 FIFO, 1 symlink loop"
    )
    assert {Path(p).name: why for p, why in report.problems} == FAKES
    assert report.class_counts == {"jump": 4, "wave": 4}
    for name in ("v1.m4v", "v2.ts", "deeper/v3.mpg"):
        path = messy / "jump" / name
        assert report.frames[str(path)] == FRAMES
        assert read_frames(path, [0, FRAMES - 1], probe_video(path)).shape == (2, 3, 32, 32)


def test_check_data_and_the_run_count_skipped_files_by_reason(
    messy: Path, rnnkit: CliRunner
) -> None:
    from rnnkit_video.data import open_source
    from rnnkit_video.task import VideoActionTask

    from rnnvision_kit.config import apply_overrides, validate

    with FifoWatch(messy / "jump" / "fifo.mp4") as fifo:
        result = rnnkit("check-data", "--task", "video-action", "--data", f"videofolder:{messy}")
        config = VideoActionTask().default_config()
        config.data.source, config.data.path = "videofolder", str(messy)
        apply_overrides(config, ["data.val_fraction=0.25", "data.test_fraction=0.25"])
        validate(config)
        bundle = open_source("videofolder", config)
    assert fifo.opened == 0
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "8 of 12 videos readable" in lines
    assert "4 file(s): not a video file" in lines
    counts = "2 not a video file, 1 dangling link, 1 FIFO, 1 symlink loop"
    assert f"5 file(s) not taken as videos: {counts}" in lines
    rows = [line.split(None, 2) for line in lines]
    assert {Path(p).name: why for kind, p, why in rows if kind == "unreadable"} == FAKES
    assert {Path(p).name: why for kind, p, why in rows if kind == "skipped"} == NOT_TAKEN
    # the run's first lines: "skipped 9 file(s): ...; see summary.json", listing first
    assert skipped_note(bundle.skipped) == (
        "skipped 9 file(s): 6 not a video file, 1 dangling link, 1 FIFO, 1 symlink loop"
    )
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 8


def test_a_frame_folder_listing_counts_what_is_not_a_frame_folder(tmp_path: Path) -> None:
    walk = tmp_path / "frames" / "walk"
    (walk / "v0").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(walk / "v0" / "000.png")
    (walk / "labels.csv").write_text("v0,walk\n")
    write_specials(walk)
    skipped: list[tuple[str, str]] = []
    with FifoWatch(walk / "fifo.mp4") as fifo:
        samples, classes = list_framefolder(tmp_path / "frames", skipped=skipped)
    assert fifo.opened == 0 and classes == ["walk"]
    assert [Path(s.path).name for s in samples] == ["v0"]
    assert {Path(p).name: why for p, why in skipped} == {
        "dangling.mp4": "dangling link",
        "fifo.mp4": "FIFO (not a regular file)",
        "labels.csv": "not a frame folder (a file)",
        "loop.mp4": "symlink loop",
    }
