"""Video I/O benchmark: seeking clip reads vs full decodes, loader throughput, memory vs length.

Run: ``python benchmarks/video_io.py``. Writes its videos to a temporary folder.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnnvision_kit.data import (  # noqa: E402
    ProbeCache,
    VideoClipDataset,
    probe_video,
    read_clip,
    write_video,
)

FPS = 25
CLIP = 16


def make_video(path: Path, seconds: float, width: int = 320, height: int = 240) -> Path:
    """A textured pattern scrolling diagonally, so the encoder has real work to do."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, size=(height * 2, width * 2, 3), dtype=np.uint8)
    texture = np.asarray(
        torch.nn.functional.avg_pool2d(
            torch.from_numpy(texture).permute(2, 0, 1).float()[None], 5, 1, 2
        )[0]
        .permute(1, 2, 0)
        .byte()
    )
    count = int(seconds * FPS)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for i in range(count):
        dy, dx = (i * 2) % height, (i * 3) % width
        frames[i] = texture[dy : dy + height, dx : dx + width]
    return write_video(path, frames, fps=FPS)


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls (seconds)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def decode_all_and_slice(path: Path, start: int, count: int) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return np.stack(frames[start : start + count])


def _peak_rss_mib() -> float:
    """Peak resident memory of this process (VmHWM on Linux, else ru_maxrss) in MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    """Resident memory of this process now (Linux), else the peak."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return _peak_rss_mib()


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0; elsewhere the peak stays process-wide)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def _memory_worker(args: tuple[str, str]) -> tuple[float, float]:
    """In a fresh process: (peak RSS growth MiB, tracemalloc peak MiB) of one read."""
    path, how = args
    info = probe_video(path)
    start = info.num_frames // 2
    read_clip(path, 0, 4, info=info)  # warm up libraries and allocators
    _reset_peak_rss()
    baseline = _current_rss_mib()
    tracemalloc.start()
    if how == "clip":
        read_clip(path, start, CLIP, info=info)
    else:
        decode_all_and_slice(Path(path), start, CLIP)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return _peak_rss_mib() - baseline, peak / 2**20


def measure_memory(path: Path, how: str) -> tuple[float, float]:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.map(_memory_worker, [(str(path), how)])[0]


def loader_rate(dataset: VideoClipDataset, workers: int, epochs: int = 8) -> float:
    loader = DataLoader(dataset, batch_size=4, num_workers=workers, persistent_workers=workers > 0)
    for _ in loader:  # warm-up epoch (worker start-up)
        pass
    start = time.perf_counter()
    clips = 0
    for epoch in range(epochs):
        dataset.set_epoch(epoch + 1)
        for batch, _ in loader:
            clips += len(batch)
    return clips / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        long_video = make_video(root / "long.mp4", 20.0)
        short_video = make_video(root / "short.mp4", 5.0)
        rows.append(("write 20 s + 5 s 320x240 H.264", f"{time.perf_counter() - t0:.2f} s"))

        info = probe_video(long_video)
        start = info.num_frames // 2
        clip_time = timed(lambda: read_clip(long_video, start, CLIP, info=info), repeat=7)
        full_time = timed(lambda: decode_all_and_slice(long_video, start, CLIP), repeat=3)
        clip = read_clip(long_video, start, CLIP, info=info).permute(0, 2, 3, 1).numpy()
        same = np.array_equal(clip, decode_all_and_slice(long_video, start, CLIP))
        rows += [
            ("(a) read_clip 16 frames mid 20 s video", f"{clip_time * 1000:.1f} ms"),
            ("(b) full decode + slice", f"{full_time * 1000:.1f} ms"),
            ("    speed-up (goal >= 10x)", f"{full_time / clip_time:.1f}x"),
            ("    same frames as full decode", str(same)),
        ]

        clips_dir = root / "clips"
        clips_dir.mkdir()
        samples = []
        for k in range(8):
            path = make_video(clips_dir / f"v{k}.mp4", 3.0, width=160, height=120)
            samples.append((str(path), k % 2))
        dataset = VideoClipDataset(
            samples,
            num_frames=CLIP,
            stride=2,
            size=(112, 112),
            probe_cache=ProbeCache(root / "probe"),
        )
        for workers in (0, 2):
            rate = loader_rate(dataset, workers)
            rows.append(
                (f"(c) loader, {workers} workers (16x112x112 clips)", f"{rate:.1f} clips/s")
            )

        for label, path in (("5 s", short_video), ("20 s", long_video)):
            rss, peak = measure_memory(path, "clip")
            rows.append(
                (f"(d) read_clip memory, {label} video", f"+{rss:.1f} MiB rss, {peak:.1f} MiB py")
            )
        rss, peak = measure_memory(long_video, "full")
        rows.append(
            ("    full decode memory, 20 s video", f"+{rss:.1f} MiB rss, {peak:.1f} MiB py")
        )

    width = max(len(name) for name, _ in rows)
    print(f"PyAV {av.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
