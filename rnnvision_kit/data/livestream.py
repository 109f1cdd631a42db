"""Frames as they arrive, from a camera, a URL, a video file or a frame folder:
:class:`FrameStream` decodes in a background thread into a small bounded queue (constant
memory, decoding overlapped with the model), resizing each frame to the model's size.

The main thread waits for each frame at most ``timeout`` seconds: a stream that stalls (a camera
unplugged, a network stream that stops sending, a pipe nobody writes) ends, and says how many
frames were read. A packet or image that fails to decode is skipped and counted. What the source
is (:class:`~rnnvision_kit.data.frames.FrameSource`) decides how it is opened: FFmpeg may use a
URL's own protocols only (:func:`stream_protocols`), and a local source must be a plain media
file (no playlist, image or text) unless more protocols are allowed.
"""

from __future__ import annotations

import os
import queue
import re
import stat
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from PIL import Image

from rnnvision_kit.data.frames import (
    DEFAULT_FPS,
    IMAGE_ERRORS,
    FrameSource,
    read_frame_image,
    source_kind,
)
from rnnvision_kit.data.geometry import Fit, check_resize
from rnnvision_kit.data.video import fitted_rgb, open_media
from rnnvision_kit.errors import ConfigError, DataError, reason

__all__ = ["Frame", "FrameStream", "as_trained", "open_frames", "stream_protocols"]

QUEUE_FRAMES = 4  # decoded frames waiting for the model (bounds memory on a fast source)
POLL_S = 0.05  # how often waits look at Ctrl-C and stop requests
MAX_BAD_IN_A_ROW = 100  # consecutive undecodable packets after which a stream is unreadable
# probing of live sources (pipes, devices, URLs): 32 KiB or half a second, then decode
LIVE_PROBE = {"probesize": "32768", "analyzeduration": "500000"}
# The FFmpeg protocols a source may use: its own family only (issue 17). An HLS playlist at an
# http:// URL fetches its playlists and segments over http (from any host and port), never
# file:// or another scheme; an http -> https redirect needs --allow-protocols https,tls.
URL_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "http": ("http", "tcp"),
    "https": ("https", "tls", "tcp"),
    "rtsp": ("rtsp", "rtp", "udp", "tcp"),
    "rtsps": ("rtsps", "rtsp", "rtp", "udp", "tcp", "tls"),
    "rtmp": ("rtmp", "tcp"),
    "rtmps": ("rtmps", "rtmp", "tls", "tcp"),
    "rtp": ("rtp", "udp"),
    "udp": ("udp",),
    "tcp": ("tcp",),
}
LOCAL_PROTOCOLS = ("file",)  # files, pipes and devices
_PROTOCOL_NAME = re.compile(r"^[a-z][a-z0-9+.-]*$")

FrameT = TypeVar("FrameT")


class Frame(NamedTuple):
    """One decoded frame: what :func:`open_frames` yields (``rnnkit stream`` gives tasks the
    same fields as :class:`~rnnvision_kit.StreamFrame`)."""

    # position in the source, counting frames skipped as corrupt (the field hides tuple.index)
    index: int  # type: ignore[assignment]
    time_s: float  # presentation time, seconds from the stream's first frame
    image: torch.Tensor  # 3,H,W float32 in [0, 1] at the size asked for, on the stream's device


def stream_protocols(source: str, allow: Sequence[str] = ()) -> str:
    """FFmpeg's ``protocol_whitelist`` for ``source``: a URL's own protocol family (``rtsp`` ->
    rtsp,rtp,udp,tcp; an unknown scheme -> itself), ``file`` for anything local, plus
    ``allow`` (``--allow-protocols``; names are checked: ``ConfigError``)."""
    for name in allow:
        if not _PROTOCOL_NAME.match(name):
            raise ConfigError(f"--allow-protocols: {name!r} is not a protocol name (e.g. http,tcp)")
    if source_kind(source) == "url":
        scheme = source.split("://", 1)[0].lower()
        own = URL_PROTOCOLS.get(scheme, (scheme,))
    else:
        own = LOCAL_PROTOCOLS
    return ",".join(dict.fromkeys((*own, *allow)))


class FrameStream(Generic[FrameT]):
    """An iterator of frame records from ``source`` (``record(index, time_s, image)`` makes
    each one: :class:`Frame`, or ``rnnkit stream``'s :class:`~rnnvision_kit.StreamFrame`),
    decoded in a thread.

    ``name``, ``fps`` and ``size`` (the source's ``H, W``) open the source on first use.
    Frames are resized to ``size`` as ``resize`` says (``stretch``, ``crop``, ``pad``:
    :mod:`rnnvision_kit.data.geometry`). ``stride`` delivers every ``stride``-th frame (by
    ``index``); the others are decoded but not converted or delivered.
    Counters: ``read`` (frames taken from the source, delivered or passed over by ``stride``;
    ``max_frames`` counts these), ``processed`` (frames delivered), ``skipped`` (frames that
    failed to decode),
    ``dropped`` (``realtime``: frames a file released at its frame rate while the model was
    still busy, as a camera drops them), ``waited_s`` (seconds spent waiting for frames).
    ``ended`` says why iteration stopped: ``end``, ``timeout``, ``error`` (a read error once the
    source was open; ``error`` says which), ``max-frames``, ``interrupt`` or ``stop``.
    FFmpeg may use the source's own protocols only (:func:`stream_protocols`), and a local
    source must be a plain media file (no playlist, image or text), unless ``allow_protocols``
    names protocols it may use besides.
    """

    def __init__(
        self,
        source: str,
        size: tuple[int, int],
        *,
        record: Callable[[int, float, torch.Tensor], FrameT],
        device: torch.device | str = "cpu",
        timeout: float | None = 10.0,
        max_frames: int | None = None,
        realtime: bool = False,
        allow_protocols: Sequence[str] = (),
        resize: str = "stretch",
        stride: int = 1,
    ) -> None:
        self.source = str(source)
        self.resize = check_resize(resize)
        if stride < 1:
            raise ConfigError(f"stride must be >= 1 (got {stride})")
        self.stride = int(stride)
        self.record = record
        self.allow_protocols = tuple(allow_protocols)
        self.protocols = stream_protocols(self.source, self.allow_protocols)
        self.frame_source = FrameSource(self.source)
        self.kind = self.frame_source.kind
        self.name = self.frame_source.name
        self.height, self.width = size
        self.device = torch.device(device)
        self.timeout = timeout if timeout and timeout > 0 else None
        self.max_frames = max_frames
        self.read = 0
        self.processed = 0
        self.skipped = 0
        self.realtime = realtime
        self.dropped = 0  # realtime: frames that came while the model was still busy
        self._clock: float | None = None  # realtime: when the first frame was released
        self.waited_s = 0.0
        self.ended: str | None = None
        self.error = ""  # why a read error ended the stream (ended == "error")
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(QUEUE_FRAMES)
        self._halt = threading.Event()  # tells the decoding thread to stop
        self._stop_reason: str | None = None
        self._thread: threading.Thread | None = None
        self._info: dict[str, Any] | None = None

    # ------------------------------------------------------------------ what the task reads

    @property
    def fps(self) -> float:
        """Nominal frames per second of the source (25 when it tells none)."""
        return float(self._info_now()["fps"])

    @property
    def size(self) -> tuple[int, int]:
        """``H, W`` of the source's frames (before resizing to the model's size)."""
        info = self._info_now()
        return int(info["height"]), int(info["width"])

    @property
    def opened(self) -> bool:
        """True once the source is open (``fps`` and ``size`` then answer without waiting)."""
        return self._info is not None

    @property
    def stop_requested(self) -> str | None:
        """The reason :meth:`stop` was first called with; None until it is."""
        return self._stop_reason

    def _info_now(self) -> dict[str, Any]:
        """The source's description, opening it; Ctrl-C while it opens aborts."""
        try:
            return self._opened()
        except StopIteration:
            raise KeyboardInterrupt from None

    def __iter__(self) -> FrameStream[FrameT]:
        return self

    def __next__(self) -> FrameT:
        if self.ended is not None:
            raise StopIteration
        if self.max_frames is not None and self.read >= self.max_frames:
            self._finish("max-frames")
        self._opened()
        kind, payload = self._get()
        while kind == "frame" and payload[2] is None:  # passed over by the stride
            self.read += 1
            if self.max_frames is not None and self.read >= self.max_frames:
                self._finish("max-frames")
            kind, payload = self._get()
        if kind == "frame":
            index, seconds, array = payload
            self.read += 1
            self.processed += 1
            if not array.flags.writeable:  # PIL's and PyAV's arrays may be read-only views
                array = array.copy()
            image = torch.from_numpy(array).permute(2, 0, 1).to(self.device, torch.float32)
            return self.record(index, seconds, image.div_(255.0))
        if kind == "error":  # once open, a read error ends the stream like its end does
            self.error = str(payload).removeprefix(f"{self.source}: ")
            self._finish("error")
        self._finish("end")
        raise StopIteration

    # ------------------------------------------------------------------ control

    def stop(self, reason: str = "stop") -> None:
        """End the stream before its next frame (thread-safe; Ctrl-C calls it)."""
        self._stop_reason = self._stop_reason or reason

    def close(self) -> None:
        """Stop the decoding thread (it ends at its next frame, or when a blocked read
        returns: it is a daemon thread and never keeps the process alive)."""
        self._halt.set()
        if self.ended is None:
            self.ended = self._stop_reason or "stop"
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def __enter__(self) -> FrameStream[FrameT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _finish(self, reason: str) -> None:
        self.ended = reason
        self._halt.set()
        raise StopIteration

    # ------------------------------------------------------------------ waiting

    def _get(self) -> tuple[str, Any]:
        """The next item of the queue, waiting at most ``timeout`` seconds; a stop request
        (Ctrl-C) ends the wait at once."""
        start = time.perf_counter()
        try:
            while True:
                if self._stop_reason is not None:
                    self._finish(self._stop_reason)
                try:
                    return self._queue.get(timeout=POLL_S)
                except queue.Empty:
                    if self.timeout is not None and time.perf_counter() - start > self.timeout:
                        self._finish("timeout")
        finally:
            self.waited_s += time.perf_counter() - start

    def _opened(self) -> dict[str, Any]:
        """Start the decoding thread and wait until the source is open (or fails to open)."""
        if self._info is not None:
            return self._info
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._produce, name=f"rnnkit-stream-{self.name}", daemon=True
            )
            self._thread.start()
        try:
            kind, payload = self._get()
        except StopIteration:
            if self.ended == "timeout":
                self.ended = "error"
                raise DataError(
                    f"{self.source}: no answer within {self.timeout:g} s (--timeout); "
                    "cannot open the stream"
                ) from None
            raise
        if kind == "error":
            self.ended = "error"
            raise payload
        self._info = payload
        return payload

    # ------------------------------------------------------------------ decoding thread

    def _put_frame(self, index: int, seconds: float, array: np.ndarray | None) -> bool:
        """Queue a frame; ``realtime``: at its time from the first one, dropped if the model is
        still busy with the previous ones. False when asked to halt meanwhile."""
        item = ("frame", (index, seconds, array))
        if not self.realtime:
            return self._put(item)
        now = time.perf_counter()
        if self._clock is None:
            self._clock = now - seconds
        if self._halt.wait(max(0.0, self._clock + seconds - now)):
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
        return True

    def _put(self, item: tuple[str, Any]) -> bool:
        """Queue ``item``; False when asked to halt meanwhile."""
        while not self._halt.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            if self.kind == "folder":
                self._produce_folder()
            else:
                self._produce_av()
        except DataError as error:
            self._put(("error", error))
        except Exception as error:  # PyAV and PIL raise assorted errors on bad input
            self._put(("error", DataError(f"{self.source}: cannot read ({reason(error)})")))

    def _produce_folder(self) -> None:
        files = self.frame_source.frame_files()
        if not files:
            raise DataError(f"{self.source}: no frames (no .jpg/.jpeg/.png files)")
        first = None
        for file in files:  # the first readable image gives the size
            try:
                with Image.open(file) as image:
                    first = image.size
                break
            except IMAGE_ERRORS:
                continue
        if first is None:
            raise DataError(f"{self.source}: no readable image among {len(files)} frames")
        info = {"fps": DEFAULT_FPS, "width": first[0], "height": first[1], "frames": len(files)}
        if not self._put(("open", info)):
            return
        for index, file in enumerate(files):
            if self._halt.is_set():
                return
            if index % self.stride:  # passed over: not read (a bad image there is not seen)
                if not self._put_frame(index, index / DEFAULT_FPS, None):
                    return
                continue
            try:  # as rnnvision_kit.data.read_frame_folder reads a frame
                array = read_frame_image(file, (self.height, self.width), self.resize)
            except IMAGE_ERRORS:
                self.skipped += 1
                continue
            if not self._put_frame(index, index / DEFAULT_FPS, array):
                return
        self._put(("end", None))

    def _open_av(self) -> Any:
        options: dict[str, Any] = {}
        if self.kind == "device":
            if not os.path.exists(self.source):
                raise DataError(f"{self.source}: no such device")
            if self.source.startswith("/dev/video"):
                options["format"] = "v4l2"
        elif self.kind == "file" and not os.path.exists(self.source):
            raise DataError(f"{self.source}: no such file, folder, device or URL")
        if self.kind in ("url", "device") or _is_pipe(self.source):
            # live: start from what has arrived instead of waiting to probe seconds of it
            options["container_options"] = dict(LIVE_PROBE)
            if self.timeout is not None:
                options["timeout"] = (self.timeout, self.timeout)
        plain = self.kind != "url" and not self.allow_protocols
        try:
            return open_media(self.source, protocols=self.protocols, plain=plain, **options)
        except DataError as error:  # a local playlist, image or text
            raise DataError(f"{error}; stream opens one only with --allow-protocols") from None
        except (av.FFmpegError, OSError) as error:
            raise DataError(f"{self.source}: cannot open ({self._why(error)})") from None

    def _why(self, error: BaseException) -> str:
        """Why the source did not open; for a URL, the protocols FFmpeg was allowed, since a
        refused one (a playlist naming file://) shows only as invalid data."""
        if self.kind != "url":
            return reason(error)
        return f"{reason(error)}; protocols allowed: {self.protocols}, --allow-protocols widens"

    def _produce_av(self) -> None:
        container = self._open_av()
        try:
            if not container.streams.video:
                raise DataError(f"{self.source}: no video stream")
            stream = container.streams.video[0]
            if self.kind == "file" and not _is_pipe(self.source):
                stream.thread_type = "AUTO"  # files: frame threads; live: no added latency
            fps = DEFAULT_FPS
            for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
                if rate and float(rate) > 0:
                    fps = float(rate)
                    break
            info = {
                "fps": fps,
                "width": stream.codec_context.width,
                "height": stream.codec_context.height,
                "frames": int(stream.frames or 0),
            }
            if not self._put(("open", info)):
                return
            reformatter = VideoReformatter()  # one for all frames: it caches the scaler
            fits: dict[tuple[int, int], Fit] = {}  # per source size (a stream may change it)
            index, first_time, bad_in_a_row = 0, None, 0
            packets = container.demux(stream)
            while not self._halt.is_set():
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.FFmpegError:  # a damaged container chunk: resynchronise
                    bad_in_a_row += 1
                    if bad_in_a_row > MAX_BAD_IN_A_ROW:
                        raise
                    packets = container.demux(stream)
                    continue
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    if packet.size:
                        self.skipped += 1
                        index += 1
                        bad_in_a_row += 1
                        if bad_in_a_row > MAX_BAD_IN_A_ROW:
                            raise DataError(
                                f"{self.source}: {bad_in_a_row} undecodable packets in a row"
                            ) from None
                    continue
                for frame in frames:
                    if frame.is_corrupt:
                        self.skipped += 1
                        index += 1
                        continue
                    bad_in_a_row = 0
                    seconds = frame.time if frame.time is not None else index / fps
                    first_time = seconds if first_time is None else first_time
                    array = (
                        None
                        if index % self.stride
                        else np.ascontiguousarray(
                            fitted_rgb(
                                frame, (self.height, self.width), self.resize, reformatter, fits
                            )
                        )
                    )
                    if not self._put_frame(index, round(seconds - first_time, 6), array):
                        return
                    index += 1
            self._put(("end", None))
        finally:
            container.close()


def as_trained(spec: Any) -> dict[str, Any]:
    """The :class:`FrameStream` keywords that read frames as a run's ``spec`` was trained:
    ``resize`` (its fit; specs without one, and runs saved before it, stretched) and, for a
    ``video`` spec, ``stride`` (every ``spec.stride``-th frame; the others count as read)."""
    stride = getattr(spec, "stride", 1) if getattr(spec, "kind", None) == "video" else 1
    return {"resize": getattr(spec, "resize", "stretch"), "stride": max(1, int(stride or 1))}


def _is_pipe(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def open_frames(
    source: str,
    size: tuple[int, int],
    *,
    device: torch.device | str = "cpu",
    timeout: float | None = 10.0,
    max_frames: int | None = None,
    realtime: bool = False,
    allow_protocols: Sequence[str] = (),
    resize: str = "stretch",
) -> FrameStream[Frame]:
    """A :class:`FrameStream` of :class:`Frame` records from ``source`` (file, folder,
    ``/dev/videoN``, or a URL PyAV opens), frames resized to ``size = (H, W)``; nothing is
    opened until it is read. ``realtime`` releases a file's frames at its frame rate, dropping
    those the model is too busy for; ``allow_protocols`` widens the FFmpeg protocols the source
    may use; ``resize`` keeps the aspect ratio or not (``stretch``, ``crop``, ``pad``)."""
    return FrameStream(
        source,
        size,
        record=Frame,
        device=device,
        timeout=timeout,
        max_frames=max_frames,
        realtime=realtime,
        allow_protocols=allow_protocols,
        resize=resize,
    )
