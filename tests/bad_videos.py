"""Broken video files for the tests of every layer that must skip them: written for real, with
PyAV for the audio-only one."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_audio_only(path: Path) -> Path:
    """An mp4 with one AAC audio stream and no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_bad_videos(folder: Path, good: Path) -> dict[str, Path]:
    """``zero``, ``truncated`` (half of ``good``), ``text`` and ``audio`` files named .mp4."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / f"{name}.mp4" for name in ("zero", "truncated", "text", "audio")}
    files["zero"].write_bytes(b"")
    data = good.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["text"].write_text("this is not a video\n" * 50)
    write_audio_only(files["audio"])
    return files


def write_moov_first(path: Path, frames: int = 30, size: int = 32, seed: int = 0) -> Path:
    """An H.264 mp4 with its index (moov atom) before the media data, as streaming files are:
    cut short or damaged later, it still probes fine."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def cut_off(path: Path, fraction: float = 2 / 3) -> Path:
    """Keep only the first ``fraction`` of the file's bytes (a download or copy cut short)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def damage_media(path: Path, fraction: float = 0.5, seed: int = 1) -> Path:
    """Overwrite the media data (``mdat``) from ``fraction`` of the way in with random bytes,
    keeping the size and the index: the file still probes fine, then fails to decode part-way."""
    data = bytearray(path.read_bytes())
    start = data.find(b"mdat")
    if start < 0:
        raise ValueError(f"{path}: no mdat atom")
    start += 4 + int((len(data) - start - 4) * fraction)
    rng = np.random.default_rng(seed)
    data[start:] = rng.integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path
