"""Video files on PyAV: probe, cached probing, seeking frame reads, clip reads, whole-file
decodes (where a damaged file breaks) and writing."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from rnnvision_kit.atomicfile import atomic_open
from rnnvision_kit.data.cache import cache_dir
from rnnvision_kit.data.decoded import (
    ENDS_EARLY,
    DecodeResult,
    decode_problem,
    error_line,
    is_short,
)
from rnnvision_kit.data.geometry import Fit, check_resize, fit, fit_array
from rnnvision_kit.data.samplers import apply_short_policy
from rnnvision_kit.errors import DataError, reason

__all__ = [
    "VIDEO_SUFFIXES",
    "ProbeCache",
    "VideoInfo",
    "VideoWriter",
    "decode_problem",
    "decode_video_file",
    "open_media",
    "open_video_file",
    "probe_video",
    "read_clip",
    "read_frames",
    "stat_data_file",
    "write_video",
]

# The suffixes the writers pick a codec for. Readers take any file FFmpeg reads as a video.
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".webm", ".mov")

# FFmpeg's protocols for local files: no URL, pipe or concat protocol (issue 17).
LOCAL_PROTOCOLS = "file"
# Demuxers a local data file is never read with: they open other files, URLs or devices that
# the file names (playlists, concat scripts, session descriptions), or read a still image or
# text art as a one-frame video (issue 17). Names ending in "_pipe" are image demuxers too.
_NOT_VIDEO_FORMATS = frozenset(
    {
        "adf",
        "applehttp",
        "avisynth",
        "bin",
        "concat",
        "dash",
        "hls",
        "idf",
        "image2",
        "image2pipe",
        "imf",
        "lavfi",
        "rtp",
        "rtsp",
        "sdp",
        "tee",
        "tty",
        "vapoursynth",
        "xbin",
    }
)
# Text playlists are refused before FFmpeg reads them: under its own name (.m3u8) FFmpeg reads
# one, and opens what it lists, but not always under a video name, which would hide it.
_PLAYLIST_HEADERS: tuple[tuple[bytes, str], ...] = (
    (b"#EXTM3U", "an HLS playlist"),
    (b"ffconcat version", "an ffconcat playlist"),
)

# Gap (seconds) between wanted frames beyond which we seek instead of decoding through, used
# only when the container has no keyframe index to tell us where a seek would land.
_SEEK_GAP_SECONDS = 2.0
# Earlier seek points (seconds before the target) tried when a seek lands after the target;
# ``None`` means the start of the stream.
_SEEK_MARGINS: tuple[float | None, ...] = (0.0, 1.0, 5.0, None)

_ENCODERS: dict[str, tuple[str, ...]] = {
    ".mp4": ("libx264", "h264", "mpeg4"),
    ".mov": ("libx264", "h264", "mpeg4"),
    ".mkv": ("libx264", "h264", "mpeg4"),
    ".avi": ("mpeg4",),
    ".webm": ("libvpx", "libvpx-vp9"),
}
_ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"crf": "17", "preset": "veryfast"},
    "mpeg4": {"qmin": "1", "qmax": "4"},
    "libvpx": {"crf": "8", "b": "2M", "deadline": "realtime", "cpu-used": "8"},
    "libvpx-vp9": {"crf": "20", "b": "0", "deadline": "realtime", "cpu-used": "8"},
}
# What makes write_video's bytes depend on the frames alone (issue 17: generated data sets are
# byte-identical across generations): one thread and FFmpeg's bit-exact mode for every encoder,
# and no assembly for libx264, whose AVX-512 code reads uninitialised memory (measured: about
# one 64x64 video in 20 then differs). The muxer writes no version string or random ids.
_EXACT_OPTIONS: dict[str, str] = {"threads": "1", "flags": "+bitexact"}
_EXACT_ENCODER_OPTIONS: dict[str, dict[str, str]] = {"libx264": {"x264-params": "asm=0"}}
_EXACT_MUXER_OPTIONS: dict[str, str] = {"fflags": "+bitexact"}


@dataclass(frozen=True)
class VideoInfo:
    """What a probe learns about a video's first video stream."""

    path: str
    duration: float
    fps: float
    num_frames: int
    width: int
    height: int


def _stream_fps(stream: Any) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return None


def _stream_duration(stream: Any, container: Any) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


_SPECIAL_FILES: tuple[tuple[Any, str], ...] = (
    (stat.S_ISDIR, "folder"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "device"),
    (stat.S_ISBLK, "device"),
)


def stat_data_file(path: str | os.PathLike[str]) -> os.stat_result:
    """``os.stat`` of a local data file, which is never opened here (a FIFO would block).

    Raises ``DataError("PATH: WHY")``, WHY one of ``file not found``, ``dangling link``,
    ``symlink loop``, ``cannot stat file (...)`` or ``FIFO (not a regular file)`` (likewise
    ``socket``, ``device``, ``folder``).
    """
    name = str(path)
    try:
        st = os.stat(name)
    except OSError as error:
        if error.errno == errno.ELOOP:
            why = "symlink loop"
        elif isinstance(error, FileNotFoundError):
            why = "dangling link" if os.path.islink(name) else "file not found"
        else:
            why = f"cannot stat file ({reason(error)})"
        raise DataError(f"{name}: {why}") from None
    for test, kind in _SPECIAL_FILES:
        if test(st.st_mode):
            raise DataError(f"{name}: {kind} (not a regular file)")
    return st


def _not_video_format(format_name: str) -> bool:
    parts = format_name.split(",")  # e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    return any(p in _NOT_VIDEO_FORMATS or p.endswith("_pipe") for p in parts)


def _refuse_playlist(name: str) -> None:
    """``DataError`` for a regular file that starts as a text playlist does (others: unread)."""
    try:
        if not stat.S_ISREG(os.stat(name).st_mode):
            return
        with open(name, "rb") as handle:
            head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return  # FFmpeg says why it cannot open it
    for header, what in _PLAYLIST_HEADERS:
        if head.startswith(header):
            raise DataError(f"{name}: not a video file ({what})")


def open_media(
    path: str | os.PathLike[str],
    *,
    protocols: str = LOCAL_PROTOCOLS,
    plain: bool = True,
    container_options: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    """``av.open`` for reading, FFmpeg's protocols limited to ``protocols`` (comma-separated).

    ``plain`` refuses what is not a plain media file with ``DataError("PATH: not a video file
    (FFmpeg reads it as FORMAT)")``: a playlist or concat script (they open what they list),
    or an image or text FFmpeg reads as a one-frame video. Other errors are PyAV's.
    ``kwargs`` go to ``av.open``.
    """
    name = str(path)
    if plain:
        _refuse_playlist(name)
    options = {**(container_options or {}), "protocol_whitelist": protocols}
    container = av.open(name, container_options=options, **kwargs)
    format_name = container.format.name
    if plain and _not_video_format(format_name):
        container.close()
        raise DataError(f"{name}: not a video file (FFmpeg reads it as {format_name})")
    return container


def open_video_file(path: str | os.PathLike[str]) -> Any:
    """Open a local data file as a plain media file (see :func:`open_media`), after checking it
    is a regular file (:func:`stat_data_file`)."""
    stat_data_file(path)
    return open_media(path)


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's duration, frame rate, frame count and size; raise ``DataError`` if unusable.

    ``num_frames`` comes from the stream header, else (WebM/MKV have none) from counting the
    stream's packets, which reads the file without decoding it (:class:`ProbeCache` keeps the
    count, so that is done once). The first frame is decoded to make sure the stream is readable. The file is
    opened as a plain media file (:func:`open_media`).
    """
    name = str(path)
    if stat_data_file(name).st_size == 0:
        raise DataError(f"{name}: empty file (0 bytes)")
    try:
        with open_media(name) as container:
            if not container.streams.video:
                raise DataError(f"{name}: no video stream")
            stream = container.streams.video[0]
            first = next(iter(container.decode(stream)), None)
            if first is None:
                raise DataError(f"{name}: zero frames (no decodable video frame)")
            duration = _stream_duration(stream, container)
            fps = _stream_fps(stream)
            num_frames = int(stream.frames or 0)
            if num_frames <= 0:  # WebM/MKV: no count in the header; duration x fps is a guess
                num_frames = _count_packets(container, stream)
            if not fps:
                fps = num_frames / duration if duration > 0 else 25.0
            if duration <= 0:
                duration = num_frames / fps
            width = stream.codec_context.width or first.width
            height = stream.codec_context.height or first.height
    except DataError:
        raise
    except av.FFmpegError as error:
        raise DataError(f"{name}: not a readable video ({reason(error)})") from None
    except Exception as error:  # PyAV raises assorted builtins on garbage input
        raise DataError(f"{name}: not a readable video ({reason(error)})") from None
    if num_frames <= 0:
        raise DataError(f"{name}: zero frames")
    return VideoInfo(name, float(duration), float(fps), num_frames, int(width), int(height))


def _count_packets(container: Any, stream: Any) -> int:
    """The video packets of ``stream`` from its start: its frame count, without decoding (one
    packet per frame; empty flush packets left out)."""
    container.seek(0)
    return sum(1 for packet in container.demux(stream) if packet.size)


class ProbeCache:
    """A JSON cache of probe results keyed by absolute path, size and mtime.

    Failures are cached too (as their error message), so bad files are probed once. Call
    :meth:`save` to persist; the file is replaced atomically and merged with what other
    processes saved meanwhile.
    """

    VERSION = 2  # 2: WebM/MKV frame counts counted, not estimated from duration x fps

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else cache_dir("probe")
        self.file = self.directory / "probe.json"
        self._entries: dict[str, dict[str, Any]] = self._load()
        self._dirty = False
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != self.VERSION:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    @staticmethod
    def _stamp(path: str) -> tuple[str, int, int]:
        st = stat_data_file(path)
        return os.path.abspath(path), st.st_size, st.st_mtime_ns

    def get(self, path: str | os.PathLike[str]) -> VideoInfo:
        """Return the probe of ``path`` (probing on a miss); raise ``DataError`` if it is bad."""
        name = str(path)
        absolute, size, mtime = self._stamp(name)
        with self._lock:
            entry = self._entries.get(absolute)
        if entry is None or entry.get("size") != size or entry.get("mtime_ns") != mtime:
            entry = {"size": size, "mtime_ns": mtime}
            try:
                entry["info"] = asdict(probe_video(name))
            except DataError as error:
                text, prefix = str(error), f"{name}: "
                entry["error"] = text[len(prefix) :] if text.startswith(prefix) else text
            with self._lock:
                self._entries[absolute] = entry
                self._dirty = True
        if "error" in entry:
            raise DataError(f"{name}: {entry['error']}")
        return VideoInfo(**{**entry["info"], "path": name})

    def get_many(
        self, paths: Iterable[str | os.PathLike[str]], workers: int | None = None
    ) -> list[VideoInfo | DataError]:
        """Probe many files (misses in a thread pool); each result is a VideoInfo or the error."""

        def one(path: str | os.PathLike[str]) -> VideoInfo | DataError:
            try:
                return self.get(path)
            except DataError as error:
                return error

        paths = list(paths)
        workers = workers or min(8, os.cpu_count() or 1)
        if workers <= 1 or len(paths) < 2:
            return [one(p) for p in paths]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, paths))

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        """Write the cache atomically (temp file + ``os.replace``) if anything changed."""
        with self._lock:
            if not self._dirty:
                return
            merged = {**self._load(), **self._entries}
            self.directory.mkdir(parents=True, exist_ok=True)
            with atomic_open(self.file, "w", prefix=".probe-", suffix=".json") as handle:
                json.dump({"version": self.VERSION, "entries": merged}, handle)
            self._entries = merged
            self._dirty = False

    def __enter__(self) -> ProbeCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.save()


class _Cursor:
    """Decoded frames of one stream with their times (seconds from the stream start)."""

    def __init__(self, container: Any, stream: Any, fps: float) -> None:
        self.container = container
        self.stream = stream
        self.tb = float(stream.time_base)
        self.start_pts = stream.start_time or 0
        self.step = 1.0 / fps
        self.frames: Iterator[Any] | None = None
        self.last_time: float | None = None  # time of the last frame pulled
        self.ended = False  # the stream ran out while frames were wanted

    def seek(self, seconds: float) -> bool:
        offset = self.start_pts + int(round(max(seconds, 0.0) / self.tb))
        try:
            self.container.seek(offset, stream=self.stream, backward=True, any_frame=False)
        except av.FFmpegError:
            return False
        self.frames = self.container.decode(self.stream)
        self.last_time = None
        return True

    def next(self) -> tuple[Any, float] | None:
        if self.frames is None:
            self.frames = self.container.decode(self.stream)
        frame = next(self.frames, None)
        if frame is None:
            self.ended = True
            return None
        if frame.pts is None:
            time = 0.0 if self.last_time is None else self.last_time + self.step
        else:
            time = (frame.pts - self.start_pts) * self.tb
        self.last_time = time
        return frame, time

    def keyframe_before(self, seconds: float) -> float | None:
        """Time of the indexed keyframe at or before ``seconds``, if the container has an index."""
        entries = self.stream.index_entries
        if not len(entries):
            return None
        target = self.start_pts + int(round(seconds / self.tb))
        idx = entries.search_timestamp(target, backward=True)
        if idx < 0:
            return None
        return (entries[idx].timestamp - self.start_pts) * self.tb


def _select_frames(cursor: _Cursor, times: Sequence[float], half: float) -> list[Any]:
    """For each sorted target time, the last frame with time <= target + half; seeks as needed."""
    chosen: list[Any] = [None] * len(times)
    prev: tuple[Any, float] | None = None
    ahead: tuple[Any, float] | None = None  # a frame pulled past the previous target
    k = 0
    while k < len(times):
        target = times[k]
        position = ahead[1] if ahead else (prev[1] if prev else None)
        if _should_seek(cursor, target, position):
            for margin in _SEEK_MARGINS:
                seek_time = 0.0 if margin is None else max(target - margin, 0.0)
                if not cursor.seek(seek_time):
                    break  # unseekable: decode on from where we are
                prev, ahead = None, cursor.next()
                if seek_time <= 0.0 or (ahead is not None and ahead[1] <= target + half):
                    break  # landed at or before the target (or at the very start)
        while True:
            if ahead is not None and ahead[1] > target + half:
                chosen[k] = (prev or ahead)[0]
                k += 1
                break
            if ahead is not None:
                prev = ahead
            ahead = cursor.next()
            if ahead is None:  # end of stream: the rest get the last frame
                last = prev[0] if prev is not None else (chosen[k - 1] if k else None)
                for j in range(k, len(times)):
                    chosen[j] = last
                return chosen
    return chosen


def _should_seek(cursor: _Cursor, target: float, position: float | None) -> bool:
    if position is None:
        return target > 0.0 or cursor.frames is not None
    if target <= position:
        return False
    keyframe = cursor.keyframe_before(target)
    if keyframe is not None:
        return keyframe > position + cursor.step
    return target - position > _SEEK_GAP_SECONDS


def decode_video_file(path: str | os.PathLike[str], info: VideoInfo) -> DecodeResult:
    """Decode every frame of the video file ``path`` from its start and record how many decoded
    against ``info``'s count, how long it took, and where and why decoding fails (a file that
    decodes fewer frames than probed fails where it stops). Never raises ``DataError``."""
    name = str(path)
    start = time.perf_counter()
    frames, last_time, packet = 0, None, None
    tb, origin, exact = 0.0, 0, False
    step = 1.0 / info.fps if info.fps > 0 else 0.04
    try:
        with open_video_file(name) as container:
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
        text = str(error).removeprefix(f"{name}: ")
        return DecodeResult(name, 0, info.num_frames, time.perf_counter() - start, reason=text)
    except Exception as error:  # PyAV raises FFmpegError and assorted builtins on bad data
        seconds = time.perf_counter() - start
        pts = None if packet is None else (packet.pts if packet.pts is not None else packet.dts)
        if pts is not None and tb:
            at = max((pts - origin) * tb, 0.0)
        else:
            at = 0.0 if last_time is None else last_time + step
        index = max(frames, int(round(at * info.fps)))
        why = reason(error) if isinstance(error, av.FFmpegError | OSError) else error_line(error)
        return DecodeResult(name, frames, info.num_frames, seconds, index, at, why)
    seconds = time.perf_counter() - start
    if frames == 0 or is_short(frames, info.num_frames, exact):
        at = 0.0 if last_time is None else last_time + step
        return DecodeResult(name, frames, info.num_frames, seconds, frames, at, ENDS_EARLY)
    return DecodeResult(name, frames, info.num_frames, seconds)


def _damage(name: str, info: VideoInfo | None, fallback: str) -> DataError:
    """The error of a read that breaks part-way, naming the frame where decoding the file from
    its start first fails, as ``check-data --deep`` does (a threaded or seeking read notices
    it later, or not at all); ``fallback`` if that decode finds nothing wrong."""
    try:
        found = decode_video_file(name, info or probe_video(name)).problem()
    except DataError as error:
        found = str(error).removeprefix(f"{name}: ")
    return DataError(f"{name}: {found or fallback}")


def _check_not_cut_off(name: str, cursor: _Cursor, wanted: int, info: VideoInfo) -> None:
    """A stream that ends well before the frame count its header promised is cut off or corrupt
    (a few frames of slack: probed counts can be estimates)."""
    last = round((cursor.last_time or 0.0) / cursor.step)
    target = min(wanted, info.num_frames - 1)
    if target - last > max(2, info.num_frames // 20):
        stop = last + 1
        raise _damage(name, info, decode_problem(stop, info.num_frames, stop * cursor.step))


def _open_error(name: str, error: BaseException) -> DataError:
    return DataError(f"{name}: cannot read video ({reason(error)})")


def fitted_rgb(
    frame: Any,
    size: tuple[int, int],
    resize: str,
    reformatter: VideoReformatter,
    fits: dict[tuple[int, int], Fit],
) -> np.ndarray:
    """A decoded PyAV ``frame`` as ``H,W,3`` uint8 RGB at ``size``, fitted as ``resize`` says
    (:mod:`rnnvision_kit.data.geometry`). ``reformatter`` and ``fits`` (the geometry per source
    size) are kept by the caller across the frames of one video."""
    source = (frame.height, frame.width)
    geometry = fits.get(source) or fits.setdefault(source, fit(source, size, resize))
    height, width = geometry.scaled
    rgb = reformatter.reformat(frame, width=width, height=height, format="rgb24").to_ndarray()
    return fit_array(rgb, geometry)


def read_frames(
    path: str | os.PathLike[str],
    frame_indices: Sequence[int],
    info: VideoInfo | None = None,
    *,
    size: tuple[int, int] | None = None,
    resize: str = "stretch",
    threads: bool = True,
) -> torch.Tensor:
    """Decode the frames at ``frame_indices`` (nominal units: time = index / fps) as uint8 RGB.

    Seeks to the keyframe before the first wanted frame and decodes only up to the last one,
    seeking again across large gaps. Frames are picked by presentation time, so variable frame
    rates work; indices past the end give the last frame. Returns ``(T, 3, H, W)``, resized to
    ``size=(H, W)`` when given, the aspect ratio kept or not as ``resize`` says (``stretch``,
    ``crop``, ``pad``: :mod:`rnnvision_kit.data.geometry`).
    """
    name = str(path)
    check_resize(resize)
    wanted = [int(i) for i in frame_indices]
    if any(i < 0 for i in wanted):
        raise ValueError(f"negative frame index in {wanted}")
    cursor: _Cursor | None = None
    try:
        with open_video_file(name) as container:
            if not container.streams.video:
                raise DataError(f"{name}: no video stream")
            stream = container.streams.video[0]
            if threads:
                stream.thread_type = "AUTO"
            fps = info.fps if info is not None else (_stream_fps(stream) or 25.0)
            if not wanted:
                height, width = size or (stream.codec_context.height, stream.codec_context.width)
                return torch.empty((0, 3, height, width), dtype=torch.uint8)
            unique = sorted(set(wanted))
            cursor = _Cursor(container, stream, fps)
            frames = _select_frames(cursor, [i / fps for i in unique], 0.5 / fps)
            if frames[0] is None or frames[-1] is None:
                raise DataError(f"{name}: no decodable video frame")
            if cursor.ended and info is not None:
                _check_not_cut_off(name, cursor, unique[-1], info)
            height, width = size or (frames[0].height, frames[0].width)
            fits: dict[tuple[int, int], Fit] = {}  # per source size (a stream may change it)
            # One reformatter for all frames: it caches the scaler, which is costly to set up.
            reformatter = VideoReformatter()
            arrays: dict[int, np.ndarray] = {}
            out = np.empty((len(unique), 3, height, width), dtype=np.uint8)
            for row, frame in enumerate(frames):
                rgb = arrays.get(id(frame))
                if rgb is None:
                    rgb = fitted_rgb(frame, (height, width), resize, reformatter, fits)
                    arrays = {id(frame): rgb}  # repeats are adjacent: keep only the last
                out[row] = rgb.transpose(2, 0, 1)
    except DataError:
        raise
    except (av.FFmpegError, OSError, ValueError, RuntimeError, EOFError) as error:
        if cursor is not None and cursor.last_time is not None:  # failed part-way
            frame = round(cursor.last_time / cursor.step) + 1
            total = info.num_frames if info is not None else frame
            at = decode_problem(frame, total, frame * cursor.step, reason(error))
            raise _damage(name, info, at) from None
        raise _open_error(name, error) from None
    position = {index: row for row, index in enumerate(unique)}
    rows = [position[i] for i in wanted]
    result = torch.from_numpy(out)
    if rows == list(range(len(unique))):
        return result
    return result[rows]


def read_clip(
    path: str | os.PathLike[str],
    start_frame: int,
    num_frames: int,
    stride: int = 1,
    info: VideoInfo | None = None,
    *,
    size: tuple[int, int] | None = None,
    resize: str = "stretch",
    short_policy: str = "loop",
    threads: bool = True,
) -> torch.Tensor:
    """Read frames ``start_frame + i * stride`` for ``i < num_frames`` as ``(T, 3, H, W)`` uint8,
    resized to ``size`` as ``resize`` says (:func:`read_frames`).

    When the clip runs past the end, ``short_policy="loop"`` wraps indices around the video and
    ``"pad"`` repeats the last frame.
    """
    if short_policy not in ("loop", "pad"):
        raise DataError(f"{path}: unknown short_policy {short_policy!r} (expected 'loop' or 'pad')")
    info = info if info is not None else probe_video(path)
    indices = [start_frame + i * stride for i in range(num_frames)]
    indices = apply_short_policy(indices, info.num_frames, short_policy)
    return read_frames(path, indices, info, size=size, resize=resize, threads=threads)


def _pick_encoder(suffix: str, codec: str | None, name: str) -> str:
    if codec is not None:
        if codec not in av.codecs_available:
            raise DataError(f"{name}: codec {codec!r} is not available in this PyAV build")
        return codec
    candidates = _ENCODERS.get(suffix)
    if candidates is None:
        known = ", ".join(sorted(_ENCODERS))
        raise DataError(f"{name}: cannot choose a codec for suffix {suffix!r} (known: {known})")
    for candidate in candidates:
        if candidate in av.codecs_available:
            return candidate
    raise DataError(f"{name}: none of the encoders {candidates} is available in this PyAV build")


def _add_stream(
    container: Any, encoder: str, rate: Any, width: int, height: int, *, exact: bool
) -> Any:
    """A yuv420p video stream of ``encoder`` with its options; ``exact``: bytes that depend on
    the frames alone (slower: one thread, libx264 without assembly)."""
    options = dict(_ENCODER_OPTIONS.get(encoder, {}))
    if exact:
        name = av.Codec(encoder, "w").name  # e.g. "h264" -> "libx264"
        options.update({**_EXACT_OPTIONS, **_EXACT_ENCODER_OPTIONS.get(name, {})})
    stream = container.add_stream(encoder, rate=rate, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    return stream


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray | torch.Tensor,
    fps: int = 10,
    codec: str | None = None,
) -> Path:
    """Write ``(T, H, W, 3)`` uint8 RGB frames as a yuv420p video; the codec follows the suffix.

    ``.mp4``/``.mkv``/``.mov``: libx264, ``.avi``: mpeg4, ``.webm``: libvpx (or libvpx-vp9).
    The same frames give the same bytes (one encoder thread, bit-exact muxing), as generated data
    sets need; :class:`VideoWriter` encodes as fast as it can instead.
    """
    name = str(path)
    array = (
        frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    )
    if array.ndim != 4 or array.shape[-1] != 3:
        raise DataError(f"{name}: frames must have shape (T, H, W, 3), got {tuple(array.shape)}")
    if array.dtype != np.uint8:
        raise DataError(f"{name}: frames must be uint8, got {array.dtype}")
    count, height, width, _ = array.shape
    if count == 0:
        raise DataError(f"{name}: no frames to write")
    if height % 2 or width % 2:
        raise DataError(f"{name}: width and height must be even for yuv420p, got {width}x{height}")
    encoder = _pick_encoder(Path(name).suffix.lower(), codec, name)
    array = np.ascontiguousarray(array)
    with av.open(name, mode="w", container_options=_EXACT_MUXER_OPTIONS) as container:
        stream = _add_stream(container, encoder, fps, width, height, exact=True)
        for image in array:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return Path(name)


class VideoWriter:
    """Write RGB frames one at a time (a stream of unknown length) as a yuv420p video; the codec
    follows the suffix as in :func:`write_video`. ``write(frame H,W,3 uint8)``, then ``close()``
    (or use it as a context manager)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = 25.0,
        size: tuple[int, int] | None = None,
        codec: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.fps, self.size, self.codec = fps, size, codec
        self.frames = 0
        self._container: Any = None
        self._stream: Any = None

    def _open(self, height: int, width: int) -> None:
        from fractions import Fraction

        name = str(self.path)
        if height % 2 or width % 2:
            raise DataError(
                f"{name}: width and height must be even for yuv420p, got {width}x{height}"
            )
        encoder = _pick_encoder(self.path.suffix.lower(), self.codec, name)
        rate = Fraction(self.fps).limit_denominator(1001) if self.fps > 0 else Fraction(25)
        try:
            self._container = av.open(name, mode="w")
        except (av.FFmpegError, OSError) as error:
            raise DataError(f"{name}: cannot write video ({reason(error)})") from None
        self._stream = _add_stream(self._container, encoder, rate, width, height, exact=False)

    def write(self, frame: np.ndarray) -> None:
        """Append one ``H,W,3`` uint8 RGB frame (the first one fixes the size)."""
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise DataError(f"{self.path}: a frame must be H,W,3 uint8, got {frame.shape}")
        if self._container is None:
            self._open(*(self.size or frame.shape[:2]))
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        self._container.mux(self._stream.encode(image))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file."""
        if self._container is not None:
            self._container.mux(self._stream.encode(None))
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
