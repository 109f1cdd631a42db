"""data.resize (crop, pad, stretch) on real non-square videos and frame folders, through every
reader; the frame cache keeps modes apart; WebM/MKV frame counts are counted, not estimated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from rnnvision_kit.data.framecache import FrameCache
from rnnvision_kit.data.frames import FrameSource, read_frame_folder
from rnnvision_kit.data.geometry import fit
from rnnvision_kit.data.livestream import Frame, FrameStream, open_frames
from rnnvision_kit.data.video import ProbeCache, probe_video, read_clip, read_frames, write_video
from rnnvision_kit.data.video_datasets import VideoClipDataset
from rnnvision_kit.errors import ConfigError

RED, BLUE, GREEN = (230, 20, 20), (20, 20, 230), (20, 230, 20)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _pattern() -> np.ndarray:
    """A 32x64 (H x W) frame: green edges (8 px each side), left half red, right half blue."""
    image = np.empty((32, 64, 3), dtype=np.uint8)
    image[:, :32] = RED
    image[:, 32:] = BLUE
    image[:, :8] = GREEN
    image[:, 56:] = GREEN
    return image


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 frames of the 64x32 pattern, H.264."""
    frames = np.stack([_pattern()] * 6)
    return write_video(tmp_path_factory.mktemp("wide") / "wide.mp4", frames, fps=10)


@pytest.fixture(scope="module")
def wide_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wide_frames")
    for k in range(3):
        Image.fromarray(_pattern()).save(folder / f"{k}.png")
    return folder


def _near(pixel: torch.Tensor, colour: tuple[int, int, int], tol: int = 40) -> bool:
    return bool((pixel.int() - torch.tensor(colour)).abs().max() <= tol)


def _check_modes(reader: Callable[[str], torch.Tensor]) -> None:
    """``reader(mode)`` -> (T, 3, 32, 32) of the pattern, for each mode."""
    crop = reader("crop")[0].permute(1, 2, 0)
    assert crop.shape == (32, 32, 3)
    # crop keeps the centre 32 columns (16..48): red then blue, no green edge
    assert _near(crop[16, 2], RED) and _near(crop[16, 29], BLUE)
    assert not any(_near(crop[16, c], GREEN) for c in (0, 31))
    pad = reader("pad")[0].permute(1, 2, 0)
    # pad: the whole frame at 16x32 in the middle rows, black bars above and below
    assert pad[:7].max() <= 16 and pad[-7:].max() <= 16
    assert _near(pad[16, 1], GREEN) and _near(pad[16, 10], RED) and _near(pad[16, 21], BLUE)
    stretch = reader("stretch")[0].permute(1, 2, 0)
    # stretch: every column, squeezed; no bars
    assert _near(stretch[0, 1], GREEN) and _near(stretch[16, 10], RED)
    assert _near(stretch[16, 21], BLUE) and _near(stretch[31, 30], GREEN)


def test_the_geometry_of_each_mode() -> None:
    assert fit((360, 640), (32, 32), "crop") == ("crop", (32, 57), (0, 12), (32, 32))
    assert fit((360, 640), (32, 32), "pad") == ("pad", (18, 32), (7, 0), (32, 32))
    assert fit((1920, 1080), (32, 32), "crop").scaled == (57, 32)
    assert fit((360, 640), (32, 32), "stretch").scaled == (32, 32)
    assert fit((32, 32), (32, 32), "crop").offset == (0, 0)
    with pytest.raises(ConfigError, match=r"^data\.resize: unknown mode 'zoom'"):
        fit((10, 10), (4, 4), "zoom")


def test_video_files_read_in_each_mode(wide: Path) -> None:
    _check_modes(lambda mode: read_frames(wide, [0, 1], size=(32, 32), resize=mode))
    _check_modes(lambda mode: read_clip(wide, 0, 2, size=(32, 32), resize=mode))
    _check_modes(lambda mode: FrameSource(wide).read([0], size=(32, 32), resize=mode))
    with pytest.raises(ConfigError, match="data.resize"):
        read_frames(wide, [0], size=(32, 32), resize="zoom")


def test_frame_folders_read_in_each_mode(wide_folder: Path) -> None:
    _check_modes(lambda mode: read_frame_folder(wide_folder, [0, 2], size=(32, 32), resize=mode))
    _check_modes(lambda mode: FrameSource(wide_folder).read([1], size=(32, 32), resize=mode))


@pytest.mark.parametrize("source", ["wide", "wide_folder"])
def test_the_live_reader_fits_frames_as_the_offline_readers(
    source: str, request: pytest.FixtureRequest
) -> None:
    path = request.getfixturevalue(source)
    for mode in ("crop", "pad", "stretch"):
        offline = FrameSource(path).read([0, 1, 2], size=(32, 32), resize=mode).float() / 255
        with open_frames(str(path), (32, 32), resize=mode, max_frames=3) as frames:
            live = torch.stack([f.image for f in frames])
        assert torch.allclose(live, offline, atol=1 / 255 + 1e-6), mode


def test_the_live_reader_stride_passes_frames_over_and_counts_them(wide: Path) -> None:
    with FrameStream(str(wide), (32, 32), record=Frame, stride=4) as frames:
        indices = [f.index for f in frames]
    assert indices == [0, 4] and frames.read == 6 and frames.processed == 2


def test_the_data_set_and_the_frame_cache_keep_modes_apart(wide: Path, tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    common = {"num_frames": 2, "size": (32, 32), "seed": None, "frame_cache": cache}
    probes = ProbeCache(tmp_path / "probe")
    crop = VideoClipDataset([(str(wide), 0)], resize="crop", probe_cache=probes, **common)
    stretch = VideoClipDataset([(str(wide), 0)], probe_cache=probes, **common)  # the default
    a, b = crop[0][0], stretch[0][0]
    assert cache.stats["decodes"] == 2 and cache.stats["writes"] == 2  # two entries
    assert torch.equal(crop[0][0], a) and torch.equal(stretch[0][0], b)
    assert cache.stats["hits"] == 2
    assert not torch.equal(a, b)
    info = crop.infos[0]
    keys = {m: cache.key(str(wide), info, (32, 32), "x", m) for m in ("crop", "pad", "stretch")}
    assert len(set(keys.values())) == 3
    # entries written before data.resize existed (stretched) keep their key
    assert keys["stretch"] == cache.key(str(wide), info, (32, 32), "x")
    with pytest.raises(ConfigError, match="data.resize"):
        VideoClipDataset([(str(wide), 0)], resize="zoom", probe_cache=probes, **common)


# ------------------------------------------------------------------ frame counts (item 8)


def _mkv_with_longer_audio(path: Path, frames: int) -> Path:
    """An MKV (no frame count in its header) of ``frames`` 10 fps video frames and 2 s of audio:
    duration x fps would say 20 frames."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=8000)
        audio.layout = "mono"
        for i in range(frames):
            image = np.full((32, 48, 3), i * 20, dtype=np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        for k in range(20):
            samples = np.zeros((1, 800), dtype=np.int16)
            chunk = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            chunk.sample_rate, chunk.pts = 8000, k * 800
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
    return path


def test_mkv_and_webm_frame_counts_are_counted_once(tmp_path: Path) -> None:
    path = _mkv_with_longer_audio(tmp_path / "a.mkv", 12)
    with av.open(str(path)) as container:
        assert not container.streams.video[0].frames  # no count in the header
    assert probe_video(path).num_frames == 12
    with ProbeCache(tmp_path / "probe") as cache:
        assert cache.get(path).num_frames == 12
    assert ProbeCache(tmp_path / "probe").get(path).num_frames == 12  # from the cache file
    for suffix in (".mkv", ".webm"):
        frames = np.random.default_rng(0).integers(0, 255, (13, 32, 48, 3), dtype=np.uint8)
        video = write_video(tmp_path / f"v{suffix}", frames, fps=24)
        assert probe_video(video).num_frames == 13
