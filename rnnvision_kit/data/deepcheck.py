"""Deep decode checks: decode every frame of a video file (or open every image of a frame
folder) and say where decoding fails, for files that probe fine but are corrupt part-way."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import av
from PIL import Image

from rnnvision_kit.data.video import VideoInfo, decode_problem, open_video_file, probe_video
from rnnvision_kit.data.video_datasets import FRAME_SUFFIXES, _bad_frame, probe_frame_folder
from rnnvision_kit.errors import DataError, reason

__all__ = ["DecodeResult", "decode_file", "decode_files", "default_workers"]


@dataclass(frozen=True)
class DecodeResult:
    """What decoding a whole file found: frames decoded against the probe's count, the time it
    took and, when decoding fails or stops early, where (frame index, seconds) and why."""

    path: str
    frames: int  # frames decoded
    expected: int  # frames the probe counts (0 when the probe failed)
    seconds: float  # wall time of the decode
    fail_frame: int | None = None  # first frame that could not be decoded
    fail_time: float | None = None  # its time, seconds from the stream start (pts * time_base)
    reason: str | None = None  # one line; None when every frame decoded

    @property
    def ok(self) -> bool:
        """True when the whole file decoded."""
        return self.reason is None

    @property
    def rate(self) -> float:
        """Frames decoded per second of wall time (0 when nothing was timed)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def problem(self) -> str | None:
        """What a run reading the file says too (:func:`~rnnvision_kit.data.decode_problem`):
        ``"decoding fails at frame K of M (t=X s): reason"``, ``"decoding stops at frame K of M
        (t=X s): the file is cut off or corrupt"`` for a file that ends early, the probe's
        problem when it has no frame, or None when it decoded whole."""
        if self.reason is None:
            return None
        if self.fail_time is None or self.fail_frame is None:
            return self.reason
        why = None if self.reason == _ENDS_EARLY else self.reason
        return decode_problem(self.fail_frame, self.expected, self.fail_time, why)


_ENDS_EARLY = "file ends early"


def _short(frames: int, expected: int, exact: bool) -> bool:
    """Fewer frames than probed; a count estimated from duration x frame rate (WebM/MKV: no
    count in the header) gets the slack :func:`~rnnvision_kit.data.read_frames` allows."""
    return frames < expected - (0 if exact else max(2, expected // 20))


def _decode_video(path: str, info: VideoInfo) -> DecodeResult:
    start = time.perf_counter()
    frames, last_time, packet = 0, None, None
    tb, origin, exact = 0.0, 0, False
    step = 1.0 / info.fps if info.fps > 0 else 0.04
    try:
        with open_video_file(path) as container:
            stream = container.streams.video[0]
            tb = float(stream.time_base) if stream.time_base else 0.0
            origin = stream.start_time or 0
            exact = bool(stream.frames) and stream.frames == info.num_frames
            for packet in container.demux(stream):
                for frame in packet.decode():
                    frames += 1
                    if frame.pts is not None and tb:
                        last_time = (frame.pts - origin) * tb
                    else:
                        last_time = (last_time + step) if last_time is not None else 0.0
                packet = None  # decoded: a failure from here on is the demuxer's
    except DataError as error:  # not (or no longer) a plain media file
        text = str(error).removeprefix(f"{path}: ")
        return DecodeResult(path, 0, info.num_frames, time.perf_counter() - start, reason=text)
    except Exception as error:  # PyAV raises FFmpegError and assorted builtins on bad data
        seconds = time.perf_counter() - start
        pts = None if packet is None else (packet.pts if packet.pts is not None else packet.dts)
        if pts is not None and tb:
            at = max((pts - origin) * tb, 0.0)
        else:
            at = 0.0 if last_time is None else last_time + step
        index = max(frames, int(round(at * info.fps)))
        why = reason(error) if isinstance(error, av.FFmpegError | OSError) else _line(error)
        return DecodeResult(path, frames, info.num_frames, seconds, index, at, why)
    seconds = time.perf_counter() - start
    if frames == 0 or _short(frames, info.num_frames, exact):
        at = 0.0 if last_time is None else last_time + step
        return DecodeResult(path, frames, info.num_frames, seconds, frames, at, _ENDS_EARLY)
    return DecodeResult(path, frames, info.num_frames, seconds)


def _line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def _decode_folder(path: str, info: VideoInfo) -> DecodeResult:
    start = time.perf_counter()
    try:
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(FRAME_SUFFIXES))
    except OSError as error:
        return DecodeResult(
            path, 0, info.num_frames, 0.0, 0, 0.0, f"cannot list frames ({reason(error)})"
        )
    for index, name in enumerate(names):
        try:
            with Image.open(os.path.join(path, name)) as image:
                image.load()
        except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, bomb errors
            seconds = time.perf_counter() - start
            why = _bad_frame(name, error)
            return DecodeResult(path, index, info.num_frames, seconds, index, index / info.fps, why)
    seconds = time.perf_counter() - start
    if _short(len(names), info.num_frames, exact=True):
        at = len(names) / info.fps
        return DecodeResult(path, len(names), info.num_frames, seconds, len(names), at, _ENDS_EARLY)
    return DecodeResult(path, len(names), info.num_frames, seconds)


def decode_file(
    path: str | os.PathLike[str], info: VideoInfo | None = None, *, fps: float = 25.0
) -> DecodeResult:
    """Decode every frame of the video ``path`` with PyAV (a frame folder: open every image) and
    record how many decoded against the probe's count (``info``, probed when None), how long it
    took, and where and why decoding fails. A file that decodes fewer frames than probed counts
    as failing where it stops. ``fps`` is a frame folder's frame rate. Never raises
    ``DataError``: a probe failure is a result with no frames."""
    name = str(path)
    folder = os.path.isdir(name)
    if info is None:
        try:
            info = probe_frame_folder(name, fps) if folder else probe_video(name)
        except DataError as error:
            text = str(error)
            text = text[len(name) + 2 :] if text.startswith(f"{name}: ") else text
            return DecodeResult(name, 0, 0, 0.0, reason=text)
    return _decode_folder(name, info) if folder else _decode_video(name, info)


def default_workers(workers: int | None = None) -> int:
    """``workers`` if given (at least 1), else ``min(8, cpu_count)``: files decoded at a time."""
    return max(1, workers or min(8, os.cpu_count() or 1))


def decode_files(
    paths: Sequence[str | os.PathLike[str]],
    infos: Sequence[VideoInfo | None] | None = None,
    *,
    workers: int | None = None,
    fps: float = 25.0,
    progress: bool | None = None,
) -> list[DecodeResult]:
    """:func:`decode_file` for every path (``infos``: their probes, where known), ``workers``
    files at a time (threads: PyAV decodes without the GIL; default ``min(8, cpu_count)``), with
    a progress bar on stderr when it is a terminal (``progress=None``). Results are in the order
    of ``paths``."""
    items = [str(p) for p in paths]
    known = list(infos) if infos is not None else [None] * len(items)
    if len(known) != len(items):
        raise ValueError(f"{len(items)} paths but {len(known)} infos")
    workers = default_workers(workers)
    show = sys.stderr.isatty() if progress is None else progress
    results: list[DecodeResult | None] = [None] * len(items)
    bar = _bar(len(items), show)
    try:
        if workers == 1 or len(items) < 2:
            for k, (path, info) in enumerate(zip(items, known, strict=True)):
                results[k] = decode_file(path, info, fps=fps)
                bar.update(1)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {
                    pool.submit(decode_file, path, info, fps=fps): k
                    for k, (path, info) in enumerate(zip(items, known, strict=True))
                }
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update(1)
    finally:
        bar.close()
    return [r for r in results if r is not None]


def _bar(total: int, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, desc="decoding", unit="file", file=sys.stderr, leave=False, disable=not show
    )
