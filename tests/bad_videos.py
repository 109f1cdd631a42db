"""Broken video files for the tests of every layer that must skip them: written for real, with
PyAV for the audio-only one."""

from __future__ import annotations

import errno
import os
import threading
import time
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


def write_container(
    path: Path, fmt: str, codec: str, frames: int = 10, fps: int = 10, seed: int = 0
) -> Path:
    """``frames`` noise frames of 32x32 in the muxer ``fmt`` (``mpegts``, ``mpeg``, ``mp4``...),
    whatever the suffix of ``path``."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_ffconcat(path: Path, *files: str) -> Path:
    """An ffconcat script (FFmpeg plays the ``files`` it lists one after the other)."""
    path.write_text("ffconcat version 1.0\n" + "".join(f"file {f}\n" for f in files))
    return path


def write_hls(path: Path, *segments: str, seconds: float = 1.0) -> Path:
    """An HLS playlist of ``segments`` (file names or URLs), each ``seconds`` long."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0"]
    for segment in segments:
        lines += [f"#EXTINF:{seconds:.1f},", segment]
    path.write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    return path


def write_specials(folder: Path) -> dict[str, Path]:
    """``loop.mp4`` (a symlink to itself), ``dangling.mp4`` (a link to nothing) and ``fifo.mp4``
    (a named pipe: opening it to read blocks until someone writes)."""
    files = {name: folder / f"{name}.mp4" for name in ("loop", "dangling", "fifo")}
    files["loop"].symlink_to(files["loop"].name)
    files["dangling"].symlink_to("gone.mp4")
    os.mkfifo(files["fifo"])
    return files


class FifoWatch:
    """Notices when anyone opens the FIFO ``path`` to read it, and lets that reader go at once
    (it sees an empty file) instead of blocking forever: ``opened`` counts such opens."""

    def __init__(self, path: Path) -> None:
        self.path, self.opened = path, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as error:  # ENXIO: no reader
                if error.errno != errno.ENXIO:
                    return
                continue
            self.opened += 1
            os.close(fd)
            time.sleep(0.05)  # the reader sees end-of-file and closes it

    def __enter__(self) -> FifoWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
