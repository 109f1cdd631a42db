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
