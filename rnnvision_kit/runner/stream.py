"""``rnnkit stream``: frames from a file, a frame folder, a camera or a URL, as they arrive, fed to
a task's ``stream`` with the run's model; JSON-lines records out, frames per second and the
real-time factor measured.

The frames come from a :class:`~rnnvision_kit.data.livestream.FrameStream` (decoded in a thread,
a stall ends the stream after ``--timeout``, undecodable frames are skipped and counted). The
first Ctrl-C ends the stream cleanly (the task still yields its closing records); a second one
aborts.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch

from rnnvision_kit.data.livestream import FrameStream, as_trained, open_frames, stream_protocols
from rnnvision_kit.errors import ConfigError
from rnnvision_kit.registry import Registries
from rnnvision_kit.runner.pipeline import load_for_inference
from rnnvision_kit.runner.rundir import RunDir
from rnnvision_kit.task import StreamContext, StreamFrame

# FrameStream, open_frames and stream_protocols live in rnnvision_kit.data.livestream; their
# names stay importable from here.
__all__ = ["FrameStream", "StreamSummary", "open_frames", "stream_protocols", "stream_run"]

VIDEO_OUT_SUFFIXES = (".mp4", ".mkv", ".avi", ".webm", ".mov")


@dataclass(frozen=True)
class StreamSummary:
    """How a stream went: frames read (taken from the source) and processed (given to the model:
    every ``stride``-th), frames skipped, records written, times, why it ended."""

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
    processed: int | None = None  # frames given to the task (None: all frames read)
    stride: int = 1  # the model reads every stride-th frame (a video spec's stride)

    @property
    def failed(self) -> bool:
        """True when the stream stalled or broke rather than ended or was stopped."""
        return self.ended in ("timeout", "error")

    @property
    def frames_processed(self) -> int:
        """Frames given to the task (the model): every ``stride``-th frame read."""
        return self.read if self.processed is None else self.processed

    @property
    def fps(self) -> float:
        """Frames processed per wall-clock second (frames the stride passes over left out)."""
        return self.frames_processed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def ms_per_frame(self) -> float:
        """Model and output time per processed frame (waiting for frames left out)."""
        done = self.frames_processed
        return 1000.0 * self.compute_s / done if done else 0.0

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
        processed = f"{self.frames_processed} processed"
        if self.stride > 1:
            processed += f" (every {_ordinal(self.stride)} frame: the model's stride)"
        return (
            f"{self.source}: {why}; {self.read} frames read{skipped}, {processed}, "
            f"{self.records} records to {self.records_to}; {self.fps:.1f} processed frames/s, "
            f"{self.ms_per_frame:.1f} ms/processed frame, real-time factor "
            f"{self.realtime_factor:.2f} (of {self.source_fps:g} fps)"
        )


def _ordinal(n: int) -> str:
    """``2nd``, ``3rd``, ``4th``, ``11th``, ``21st``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def output_paths(
    out: Path | None, run_dir: Path, name: str
) -> tuple[Path | None, Path, Path | None]:
    """``(records file or None for stdout, folder for task files, overlay video or None)``.

    ``--out FILE.jsonl``: records there, files in ``FILE``'s folder under ``FILE``'s stem;
    ``--out FILE.mp4`` (.mkv .avi .webm .mov): an overlay video, records on stdout;
    ``--out DIR``: ``DIR/stream.jsonl`` and the files in ``DIR``; none: stdout and
    ``RUN_DIR/stream/<source name>``."""
    if out is None:
        return None, RunDir(run_dir).stream_dir / name, None
    suffix = out.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return out, out.parent / out.stem, None
    if suffix in VIDEO_OUT_SUFFIXES:
        return None, out.parent / out.stem, out
    return out / "stream.jsonl", out, None


@contextmanager
def _ctrl_c_stops(frames: FrameStream[Any]) -> Iterator[None]:
    """The first Ctrl-C stops the stream at its next frame; a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if frames.stop_requested == "interrupt":
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
    spec = built.spec
    # frames fitted as in training; a video model reads every stride-th frame (the others are
    # decoded but not converted, and count as read, not processed)
    reading = as_trained(spec)
    frames = FrameStream(
        source,
        (spec.height, spec.width),
        record=StreamFrame,
        device=device,
        timeout=timeout,
        max_frames=max_frames,
        realtime=realtime,
        allow_protocols=allow_protocols,
        **reading,
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
        source_fps=frames.fps if frames.opened else 0.0,
        ended=frames.ended or "end",
        timeout=frames.timeout,
        records_to=str(records_file) if records_file is not None else "stdout",
        error=frames.error,
        processed=frames.processed,
        stride=frames.stride,
    )
