"""``rnnkit stream``: frames from a file, a frame folder, a camera or a URL, as they arrive, fed to
a task's ``stream`` with the run's model; JSON-lines records out, frames per second and the
real-time factor measured.

A :class:`FrameStream` decodes in a background thread into a small bounded queue (constant
memory, decoding overlapped with the model), resizing each frame to the model's size. The main
thread waits for each frame at most ``timeout`` seconds: a stream that stalls (a camera
unplugged, a network stream that stops sending, a pipe nobody writes) ends with a line saying
how many frames were read. A packet or image that fails to decode is skipped and counted; the
task's state carries on to the next frame. The first Ctrl-C ends the stream cleanly (the task
still yields its closing records); a second one aborts.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from rnnvision_kit.errors import ConfigError, DataError, reason
from rnnvision_kit.registry import Registries
from rnnvision_kit.runner.pipeline import load_for_inference
from rnnvision_kit.task import StreamContext, StreamFrame

__all__ = ["FrameStream", "StreamSummary", "open_frames", "stream_protocols", "stream_run"]

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")  # those of rnnvision_kit.data.FRAME_SUFFIXES
VIDEO_OUT_SUFFIXES = (".mp4", ".mkv", ".avi", ".webm", ".mov")
QUEUE_FRAMES = 4  # decoded frames waiting for the model (bounds memory on a fast source)
POLL_S = 0.05  # how often waits look at Ctrl-C and stop requests
MAX_BAD_IN_A_ROW = 100  # consecutive undecodable packets after which a stream is unreadable
DEFAULT_FPS = 25.0  # when a source tells none (frame folders, some cameras)
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


def source_kind(source: str) -> str:
    """``url`` (scheme://...), ``device`` (/dev/...), ``folder`` or ``file``."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source):
        return "url"
    if source.startswith("/dev/"):
        return "device"
    return "folder" if os.path.isdir(source) else "file"


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


def source_name(source: str) -> str:
    """A short name for output folders: the file's stem, the folder's or device's name, or the
    URL's host and path with odd characters replaced."""
    if source_kind(source) == "url":
        rest = source.split("://", 1)[1]
        return re.sub(r"[^A-Za-z0-9._-]+", "_", rest).strip("_.")[:80] or "stream"
    path = Path(source.rstrip("/"))
    return (path.stem if path.suffix else path.name) or "stream"


class FrameStream:
    """An iterator of :class:`StreamFrame` records from ``source``, decoded in a thread.

    ``name``, ``fps`` and ``size`` (the source's ``H, W``) open the source on first use.
    Counters: ``read`` (frames delivered), ``skipped`` (frames that failed to decode),
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
        device: torch.device | str = "cpu",
        timeout: float | None = 10.0,
        max_frames: int | None = None,
        realtime: bool = False,
        allow_protocols: Sequence[str] = (),
    ) -> None:
        self.source = str(source)
        self.allow_protocols = tuple(allow_protocols)
        self.protocols = stream_protocols(self.source, self.allow_protocols)
        self.kind = source_kind(self.source)
        self.name = source_name(self.source)
        self.height, self.width = size
        self.device = torch.device(device)
        self.timeout = timeout if timeout and timeout > 0 else None
        self.max_frames = max_frames
        self.read = 0
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

    def _info_now(self) -> dict[str, Any]:
        """The source's description, opening it; Ctrl-C while it opens aborts."""
        try:
            return self._opened()
        except StopIteration:
            raise KeyboardInterrupt from None

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> StreamFrame:
        if self.ended is not None:
            raise StopIteration
        if self.max_frames is not None and self.read >= self.max_frames:
            self._finish("max-frames")
        self._opened()
        kind, payload = self._get()
        if kind == "frame":
            index, seconds, array = payload
            self.read += 1
            if not array.flags.writeable:  # PIL's and PyAV's arrays may be read-only views
                array = array.copy()
            image = torch.from_numpy(array).permute(2, 0, 1).to(self.device, torch.float32)
            return StreamFrame(index, seconds, image.div_(255.0))
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

    def __enter__(self) -> FrameStream:
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

    def _put_frame(self, index: int, seconds: float, array: np.ndarray) -> bool:
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
        from PIL import Image

        try:
            names = sorted(n for n in os.listdir(self.source) if n.lower().endswith(FRAME_SUFFIXES))
        except OSError as error:
            raise DataError(f"{self.source}: cannot list frames ({reason(error)})") from None
        if not names:
            raise DataError(f"{self.source}: no frames (no .jpg/.jpeg/.png files)")
        files = [os.path.join(self.source, n) for n in names]
        first = None
        for file in files:  # the first readable image gives the size
            try:
                with Image.open(file) as image:
                    first = image.size
                break
            except OSError:
                continue
        if first is None:
            raise DataError(f"{self.source}: no readable image among {len(files)} frames")
        info = {"fps": DEFAULT_FPS, "width": first[0], "height": first[1], "frames": len(files)}
        if not self._put(("open", info)):
            return
        size = (self.width, self.height)
        for index, file in enumerate(files):
            if self._halt.is_set():
                return
            try:  # as rnnvision_kit.data.read_frame_folder reads a frame
                with Image.open(file) as image:
                    rgb = image.convert("RGB")
                    if rgb.size != size:
                        rgb = rgb.resize(size, Image.Resampling.BILINEAR)
                    array = np.asarray(rgb)
            except (OSError, ValueError):
                self.skipped += 1
                continue
            if not self._put_frame(index, index / DEFAULT_FPS, array):
                return
        self._put(("end", None))

    def _open_av(self) -> Any:
        import av

        from rnnvision_kit.data import open_media

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
        import av
        from av.video.reformatter import VideoReformatter

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
                    array = reformatter.reformat(
                        frame, width=self.width, height=self.height, format="rgb24"
                    ).to_ndarray()
                    if not self._put_frame(index, round(seconds - first_time, 6), array):
                        return
                    index += 1
            self._put(("end", None))
        finally:
            container.close()


def _is_pipe(path: str) -> bool:
    import stat

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
) -> FrameStream:
    """A :class:`FrameStream` of ``source`` (file, folder, ``/dev/videoN``, or a URL PyAV opens),
    frames resized to ``size = (H, W)``; nothing is opened until it is read. ``realtime``
    releases a file's frames at its frame rate, dropping those the model is too busy for;
    ``allow_protocols`` widens the FFmpeg protocols the source may use."""
    return FrameStream(
        source,
        size,
        device=device,
        timeout=timeout,
        max_frames=max_frames,
        realtime=realtime,
        allow_protocols=allow_protocols,
    )


# ---------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class StreamSummary:
    """How a stream went: frames read and skipped, records written, times, why it ended."""

    source: str
    read: int
    skipped: int
    dropped: int  # --realtime: frames released while the model was busy
    records: int
    wall_s: float  # from opening the source to the last record
    compute_s: float  # of which not spent waiting for frames (decoding overlaps in a thread)
    source_fps: float
    ended: str  # end, timeout, error, max-frames, interrupt, stop
    timeout: float | None
    records_to: str  # the JSON-lines file, or "stdout"
    error: str = ""  # the read error that ended the stream (ended == "error")

    @property
    def failed(self) -> bool:
        """True when the stream stalled or broke rather than ended or was stopped."""
        return self.ended in ("timeout", "error")

    @property
    def fps(self) -> float:
        """Frames processed per wall-clock second."""
        return self.read / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def ms_per_frame(self) -> float:
        """Model and output time per frame (waiting for frames left out)."""
        return 1000.0 * self.compute_s / self.read if self.read else 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of video processed per wall-clock second: >= 1 keeps up with the source."""
        frames = self.read + self.skipped + self.dropped
        seconds = frames / self.source_fps if self.source_fps else 0.0
        return seconds / self.wall_s if self.wall_s > 0 else 0.0

    def line(self) -> str:
        """The closing line ``rnnkit stream`` prints."""
        why = {
            "end": "end of stream",
            "max-frames": "--max-frames reached",
            "interrupt": "stopped by Ctrl-C",
            "stop": "stopped",
            "timeout": f"no frame for {self.timeout:g} s (--timeout): the stream stalled",
            "error": f"the stream broke ({self.error})",
        }.get(self.ended, self.ended)
        skipped = f", {self.skipped} skipped as undecodable" if self.skipped else ""
        if self.dropped:
            skipped += f", {self.dropped} dropped (the model did not keep up)"
        return (
            f"{self.source}: {why}; {self.read} frames read{skipped}, {self.records} records "
            f"to {self.records_to}; {self.fps:.1f} frames/s, {self.ms_per_frame:.1f} ms/frame, "
            f"real-time factor {self.realtime_factor:.2f} (of {self.source_fps:g} fps)"
        )


def output_paths(
    out: Path | None, run_dir: Path, name: str
) -> tuple[Path | None, Path, Path | None]:
    """``(records file or None for stdout, folder for task files, overlay video or None)``.

    ``--out FILE.jsonl``: records there, files in ``FILE``'s folder under ``FILE``'s stem;
    ``--out FILE.mp4`` (.mkv .avi .webm .mov): an overlay video, records on stdout;
    ``--out DIR``: ``DIR/stream.jsonl`` and the files in ``DIR``; none: stdout and
    ``RUN_DIR/stream/<source name>``."""
    if out is None:
        return None, run_dir / "stream" / name, None
    suffix = out.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return out, out.parent / out.stem, None
    if suffix in VIDEO_OUT_SUFFIXES:
        return None, out.parent / out.stem, out
    return out / "stream.jsonl", out, None


@contextmanager
def _ctrl_c_stops(frames: FrameStream) -> Iterator[None]:
    """The first Ctrl-C stops the stream at its next frame; a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if frames._stop_reason == "interrupt":
            raise KeyboardInterrupt
        frames.stop("interrupt")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stream_run(
    registries: Registries,
    run_dir: Path,
    source: str,
    *,
    every: int = 1,
    out: Path | None = None,
    timeout: float | None = 10.0,
    max_frames: int | None = None,
    top_k: int = 5,
    realtime: bool = False,
    records: IO[str] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    allow_protocols: Sequence[str] = (),
) -> StreamSummary:
    """Stream ``source`` through a run's best checkpoint and the task's ``stream``; write one
    JSON line per record (to ``records``, default stdout, unless ``out`` names a file or
    folder) and return the summary. ``on_record`` sees each record too (tests, embedding);
    ``realtime`` paces a file or folder at its frame rate, as a camera would deliver it;
    ``allow_protocols`` names FFmpeg protocols the source may use besides its own."""
    from rnnvision_kit.runner.device import select_device
    from rnnvision_kit.runner.records import to_jsonable

    if every < 1:
        raise ConfigError(f"--every must be >= 1 (got {every})")
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"--max-frames must be >= 1 (got {max_frames})")
    stream_protocols(source, allow_protocols)  # bad names: an error before the model loads
    saved, built = load_for_inference(registries, run_dir, "stream")
    device = select_device(saved.config.train.device)
    model = built.model.to(device).eval()
    frames = open_frames(
        source,
        (built.spec.height, built.spec.width),
        device=device,
        timeout=timeout,
        max_frames=max_frames,
        realtime=realtime,
        allow_protocols=allow_protocols,
    )
    records_file, out_dir, video_out = output_paths(out, Path(run_dir), frames.name)
    ctx = StreamContext(
        model, frames, saved.config, built.spec, device, every, top_k, out_dir, video_out
    )
    handle: IO[str] | None = None
    if records_file is not None:
        records_file.parent.mkdir(parents=True, exist_ok=True)
        handle = records_file.open("w", encoding="utf-8")
        sink: IO[str] = handle
    else:
        sink = records if records is not None else sys.stdout
    count, start = 0, time.perf_counter()
    try:
        with _ctrl_c_stops(frames), torch.inference_mode():
            for record in saved.task.stream(ctx):
                record = to_jsonable(record)
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                count += 1
                if on_record is not None:
                    on_record(record)
    finally:
        wall = time.perf_counter() - start
        frames.close()
        if handle is not None:
            handle.close()
    return StreamSummary(
        source=source,
        read=frames.read,
        skipped=frames.skipped,
        dropped=frames.dropped,
        records=count,
        wall_s=wall,
        compute_s=max(0.0, wall - frames.waited_s),
        source_fps=frames.fps if frames._info is not None else 0.0,
        ended=frames.ended or "end",
        timeout=frames.timeout,
        records_to=str(records_file) if records_file is not None else "stdout",
        error=frames.error,
    )
