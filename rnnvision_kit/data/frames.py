"""Frames from anywhere: :class:`FrameSource` tells what a source is (a video file, a folder of
frame images, a camera device or a URL) and reads it; the frame-folder readers live here.

This is the one place that tells a video file from a frame folder: the data sets, the deep
check, the frame cache, ``rnnkit predict`` and ``rnnkit stream`` ask a :class:`FrameSource`.
Video files are read by :mod:`rnnvision_kit.data.video`; cameras, URLs and files played as a
live stream by :mod:`rnnvision_kit.data.livestream`.

A frame folder holds one image per frame (``.jpg``, ``.jpeg``, ``.png``) in natural name order
(``2.png`` before ``10.png``, as ``ffmpeg -i clip.mp4 %d.png`` numbers them); it stores no frame
rate, so readers take one (25 frames per second unless told).
"""

from __future__ import annotations

import os
import re
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from rnnvision_kit.data.decoded import ENDS_EARLY, DecodeResult, decode_problem, is_short
from rnnvision_kit.data.geometry import check_resize, fit, fit_array
from rnnvision_kit.data.video import (
    ProbeCache,
    VideoInfo,
    decode_video_file,
    probe_video,
    read_frames,
)
from rnnvision_kit.errors import DataError, reason

__all__ = [
    "DEFAULT_FPS",
    "FRAME_SUFFIXES",
    "FrameSource",
    "SourceKind",
    "decode_frame_folder",
    "frame_files",
    "probe_frame_folder",
    "probe_sources",
    "read_frame_folder",
    "read_frame_image",
    "source_kind",
]

FRAME_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
DEFAULT_FPS = 25.0  # the frame rate of a source that tells none (frame folders, some cameras)
# What PIL raises on damaged frames (a header claiming a huge size, truncated data).
IMAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    MemoryError,
    Image.DecompressionBombError,
)
SourceKind = Literal["file", "folder", "device", "url"]
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def source_kind(source: str | os.PathLike[str]) -> SourceKind:
    """``url`` (``scheme://...``), ``folder`` (a folder: of frame images), ``device`` (under
    ``/dev/`` and not a regular file: a camera, a pipe) or ``file`` (anything else, existing or
    not: the readers say what is wrong with it)."""
    text = os.fspath(source)
    if _URL.match(text):
        return "url"
    if os.path.isdir(text):
        return "folder"
    if text.startswith("/dev/") and not os.path.isfile(text):
        return "device"
    return "file"


# ---------------------------------------------------------------------------- frame folders


def _natural_key(name: str) -> tuple[list[Any], str]:
    parts = re.split(r"(\d+)", name)
    return [int(p) if p.isdigit() else p for p in parts], name  # the name breaks ties (01, 1)


def frame_files(folder: str | os.PathLike[str]) -> list[str]:
    """The frame images of ``folder`` (``.jpg``/``.jpeg``/``.png``, any case) in natural name
    order; ``DataError("FOLDER: cannot list frames (WHY)")`` when it cannot be listed."""
    name = os.fspath(folder)
    try:
        names = [n for n in os.listdir(name) if n.lower().endswith(FRAME_SUFFIXES)]
    except OSError as error:
        raise DataError(f"{name}: cannot list frames ({reason(error)})") from None
    return [os.path.join(name, n) for n in sorted(names, key=_natural_key)]


def _bad_frame(file: str, error: BaseException) -> str:
    return f"{os.path.basename(file)}: not a readable image ({reason(error)})"


def probe_frame_folder(path: str | os.PathLike[str], fps: float = 25.0) -> VideoInfo:
    """Describe a frame folder as a video (frame count from the files, size from the first)."""
    name = str(path)
    files = frame_files(name)
    if not files:
        raise DataError(f"{name}: zero frames (no .jpg/.jpeg/.png files)")
    try:
        with Image.open(files[0]) as image:
            width, height = image.size
    except IMAGE_ERRORS as error:
        why = _bad_frame(files[0], error)
        raise DataError(f"{name}: {decode_problem(0, len(files), 0.0, why)}") from None
    return VideoInfo(name, len(files) / fps, float(fps), len(files), width, height)


def read_frame_image(
    file: str | os.PathLike[str], size: tuple[int, int] | None = None, resize: str = "stretch"
) -> np.ndarray:
    """One frame image as ``H,W,3`` uint8 RGB, resized (bilinear) to ``size = (H, W)`` when
    given, the aspect ratio kept or not as ``resize`` says (``stretch``, ``crop``, ``pad``:
    :mod:`rnnvision_kit.data.geometry`). PIL's errors (:data:`IMAGE_ERRORS`) pass through:
    callers word them."""
    check_resize(resize)
    with Image.open(file) as image:
        rgb = image.convert("RGB")
        if size is None or rgb.size == (size[1], size[0]):
            return np.asarray(rgb)
        geometry = fit((rgb.height, rgb.width), size, resize)
        scaled_h, scaled_w = geometry.scaled
        if rgb.size != (scaled_w, scaled_h):
            rgb = rgb.resize((scaled_w, scaled_h), Image.Resampling.BILINEAR)
        return fit_array(np.asarray(rgb), geometry)


def read_frame_folder(
    path: str | os.PathLike[str],
    frame_indices: Sequence[int],
    info: VideoInfo | None = None,
    *,
    size: tuple[int, int] | None = None,
    resize: str = "stretch",
) -> torch.Tensor:
    """Read frames of a frame folder like :func:`read_frames`: ``(T, 3, H, W)`` uint8 RGB;
    indices past the end give the last frame. Frames are resized to ``size`` (as ``resize``
    says), else to the size of ``info`` (the first file's), else to that of the first frame
    read. An unreadable frame is reported as :func:`read_frames` and ``check-data --deep``
    report one."""
    files = frame_files(str(path))
    if not files:
        raise DataError(f"{path}: zero frames (no .jpg/.jpeg/.png files)")
    if size is None and info is not None:
        size = (info.height, info.width)
    images: dict[int, np.ndarray] = {}
    out: list[np.ndarray] = []
    for index in frame_indices:
        k = min(int(index), len(files) - 1)
        if k not in images:
            try:
                images[k] = read_frame_image(files[k], size, resize)
            except IMAGE_ERRORS as error:
                step = 1.0 / info.fps if info is not None else 0.04
                own = decode_problem(k, len(files), k * step, _bad_frame(files[k], error))
                raise _damage(str(path), info, own) from None
            size = size or (images[k].shape[0], images[k].shape[1])
        out.append(images[k])
    if not out:
        height, width = size or (0, 0)
        return torch.empty((0, 3, height, width), dtype=torch.uint8)
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def decode_frame_folder(path: str | os.PathLike[str], info: VideoInfo) -> DecodeResult:
    """Open every image of the frame folder ``path`` in frame order and record how many opened
    against ``info``'s count, how long it took, and which frame fails first and why. Never
    raises ``DataError``."""
    name = str(path)
    start = time.perf_counter()
    try:
        files = frame_files(name)
    except DataError as error:
        why = str(error).removeprefix(f"{name}: ")
        return DecodeResult(name, 0, info.num_frames, 0.0, 0, 0.0, why)
    for index, file in enumerate(files):
        try:
            with Image.open(file) as image:
                image.load()
        except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, bomb errors
            seconds = time.perf_counter() - start
            why = _bad_frame(file, error)
            return DecodeResult(name, index, info.num_frames, seconds, index, index / info.fps, why)
    seconds = time.perf_counter() - start
    if is_short(len(files), info.num_frames, exact=True):
        at = len(files) / info.fps
        return DecodeResult(name, len(files), info.num_frames, seconds, len(files), at, ENDS_EARLY)
    return DecodeResult(name, len(files), info.num_frames, seconds)


def _damage(name: str, info: VideoInfo | None, fallback: str) -> DataError:
    """The error of a frame folder read that breaks part-way, naming the first frame that fails
    when the folder is read from its start (``check-data --deep``'s words); ``fallback`` if
    that finds nothing wrong."""
    try:
        found = decode_frame_folder(name, info or probe_frame_folder(name)).problem()
    except DataError as error:
        found = str(error).removeprefix(f"{name}: ")
    return DataError(f"{name}: {found or fallback}")


# ---------------------------------------------------------------------------- any source


class FrameSource:
    """Where frames come from: a video file, a folder of frame images, a camera device
    (``/dev/video0``) or a URL (``rtsp://...``); ``kind`` says which (:func:`source_kind`),
    decided once, here.

    :meth:`probe`, :meth:`read` and :meth:`decode` read a file or a frame folder as a video
    (a camera or a URL is read live, by :class:`~rnnvision_kit.data.livestream.FrameStream`;
    given here, it is read as a file, whose readers say why it is not one). Errors are
    ``DataError`` on one line naming the source.
    """

    __slots__ = ("kind", "path")

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.path: str = os.fspath(source)
        self.kind: SourceKind = source_kind(self.path)

    def __repr__(self) -> str:
        return f"FrameSource({self.path!r}, kind={self.kind!r})"

    @property
    def is_folder(self) -> bool:
        """True for a folder of frame images."""
        return self.kind == "folder"

    @property
    def name(self) -> str:
        """A short name for output files and folders: the file's stem, the folder's or device's
        name, or the URL's host and path with odd characters replaced."""
        if self.kind == "url":
            rest = self.path.split("://", 1)[1]
            return re.sub(r"[^A-Za-z0-9._-]+", "_", rest).strip("_.")[:80] or "stream"
        path = Path(self.path.rstrip("/"))
        return (path.stem if path.suffix else path.name) or "stream"

    @property
    def reader(self) -> str:
        """Which decoder makes the pixels (``pil-natural`` or ``av-rgb24``): part of the keys of
        caches of decoded frames."""
        return "pil-natural" if self.is_folder else "av-rgb24"

    def frame_files(self) -> list[str]:
        """A frame folder's images in frame order (:func:`frame_files`)."""
        if not self.is_folder:
            raise DataError(f"{self.path}: not a folder of frames")
        return frame_files(self.path)

    def probe(self, fps: float = DEFAULT_FPS, *, cache: ProbeCache | None = None) -> VideoInfo:
        """Frame count, frame rate, duration and size; ``fps`` is a frame folder's frame rate,
        ``cache`` keeps a video file's probe (:class:`ProbeCache`)."""
        if self.is_folder:
            return probe_frame_folder(self.path, fps)
        return cache.get(self.path) if cache is not None else probe_video(self.path)

    def read(
        self,
        frame_indices: Sequence[int],
        info: VideoInfo | None = None,
        *,
        size: tuple[int, int] | None = None,
        resize: str = "stretch",
        threads: bool = True,
    ) -> torch.Tensor:
        """Frames ``frame_indices`` as ``(T, 3, H, W)`` uint8 RGB (:func:`read_frames`,
        :func:`read_frame_folder`), resized to ``size`` as ``resize`` says (``stretch``,
        ``crop``, ``pad``); ``threads`` lets FFmpeg decode a file in threads."""
        if self.is_folder:
            return read_frame_folder(self.path, frame_indices, info, size=size, resize=resize)
        return read_frames(
            self.path, frame_indices, info, size=size, resize=resize, threads=threads
        )

    def decode(self, info: VideoInfo) -> DecodeResult:
        """Decode every frame from the start (``check-data --deep``): where and why it fails."""
        if self.is_folder:
            return decode_frame_folder(self.path, info)
        return decode_video_file(self.path, info)


def probe_sources(
    paths: Sequence[str], cache: ProbeCache, fps: float = DEFAULT_FPS
) -> list[VideoInfo | DataError]:
    """Probe many sources: video files through ``cache`` (misses in a thread pool; the cache is
    saved), frame folders at ``fps``; each result is a VideoInfo or the source's DataError."""
    sources = [FrameSource(p) for p in paths]
    files = [s.path for s in sources if not s.is_folder]
    results: dict[str, VideoInfo | DataError] = dict(zip(files, cache.get_many(files), strict=True))
    for source in sources:
        if source.path not in results:
            try:
                results[source.path] = source.probe(fps)
            except DataError as error:
                results[source.path] = error
    cache.save()
    return [results[p] for p in paths]
