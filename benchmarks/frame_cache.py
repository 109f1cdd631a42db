"""Decoded-frame cache: epoch 1 vs epoch 2 wall time of the default video-action run on real-size
videos, with the cache on and off, and the cache's bytes on disk per video.

Writes ``--videos`` H.264 videos of 340x256, 10 s at 25 fps (PyAV) to a temporary folder, then
runs ``rnnkit run --task video-action --data videofolder:DIR`` (the default model, clip settings
and ``data.size=32``) for ``--epochs`` epochs in a fresh process, once with
``data.frame_cache=false`` and once with a new, empty cache folder. Prints each epoch's seconds
(training and validation, from ``metrics.jsonl``) side by side and the ratios; goal: epoch 2 at
least 5x faster than epoch 1 with the cache. Then the bytes one video takes in the cache at sizes
32, 112 and 224.

    python benchmarks/frame_cache.py [--videos 40] [--epochs 3] [--workers 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnnvision_kit.data import FrameCache, ProbeCache, VideoClipDataset, write_video  # noqa: E402

WIDTH, HEIGHT, SECONDS, FPS = 340, 256, 10.0, 25
GOAL = 5.0
SIZES = (32, 112, 224)


def make_video(path: Path, direction: int, seed: int) -> Path:
    """A smoothed random texture scrolling left or right (the class), with some noise, so the
    encoder has real work to do (its keyframes come every few seconds, as in real videos)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, size=(HEIGHT // 4, (WIDTH * 2) // 4, 3), dtype=np.uint8)
    texture = texture.repeat(4, axis=0).repeat(4, axis=1)
    count = int(SECONDS * FPS)
    frames = np.empty((count, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for i in range(count):
        dx = (i * 3 * direction) % WIDTH
        frames[i] = texture[:, dx : dx + WIDTH]
    noise = rng.integers(-6, 7, size=frames.shape, dtype=np.int16)
    frames = np.clip(frames.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return write_video(path, frames, fps=FPS)


def write_videos(root: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        name = ("left", "right")[i % 2]
        (root / name).mkdir(parents=True, exist_ok=True)
        paths.append(make_video(root / name / f"{i:03d}.mp4", 1 if i % 2 else -1, seed=i))
    return paths


def rnnkit_command() -> list[str]:
    script = Path(sys.executable).parent / "rnnkit"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rnnvision_kit"]


def run(root: Path, work: Path, cache: str, epochs: int, workers: int) -> list[float]:
    """Seconds of each epoch of one ``rnnkit run`` in a fresh process."""
    out = work / f"runs-{cache.replace('/', '_')}"
    out.mkdir(parents=True)
    command = [
        *rnnkit_command(),
        "run",
        "--task",
        "video-action",
        "--data",
        f"videofolder:{root}",
        "--epochs",
        str(epochs),
        "--set",
        f"data.frame_cache={cache}",
        "--set",
        f"data.num_workers={workers}",
        "--json",
    ]
    env = {**os.environ, "RNNKIT_CACHE": str(work / "rnnkit-cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"rnnkit run failed:\n{done.stderr[-3000:]}")
    run_dir = out / json.loads(done.stdout)["run_dir"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [float(r["seconds"]) for r in rows]


def bytes_per_video(video: Path, work: Path) -> dict[int, int]:
    """Bytes on disk of one video's cache entry (its whole frame range) at each size."""
    out = {}
    for size in SIZES:
        folder = work / f"bytes-{size}"
        cache = FrameCache(folder)
        dataset = VideoClipDataset(
            [(str(video), 0)],
            num_frames=5,
            stride=3,
            size=(size, size),
            seed=0,
            probe_cache=ProbeCache(work / "probe"),
            frame_cache=cache,
        )
        dataset[0]
        out[size] = cache.usage()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=40, help="videos written (2 classes)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="data.num_workers")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rnnkit-frame-cache-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        videos = write_videos(work / "videos", args.videos)
        written = time.perf_counter() - started
        mp4 = sum(p.stat().st_size for p in videos) / len(videos)
        off = run(work / "videos", work, "false", args.epochs, args.workers)
        on = run(work / "videos", work, str(work / "frames"), args.epochs, args.workers)
        sizes = bytes_per_video(videos[0], work)

    figures = {
        "videos": args.videos,
        "video": f"{WIDTH}x{HEIGHT}, {SECONDS:g} s, {FPS} fps, H.264",
        "mp4_bytes_per_video": round(mp4),
        "seconds_writing_videos": round(written, 1),
        "epoch_seconds_cache_off": off,
        "epoch_seconds_cache_on": on,
        "epoch1_over_epoch2_cache_on": round(on[0] / on[1], 2),
        "epoch1_over_epoch2_cache_off": round(off[0] / off[1], 2),
        "epoch2_off_over_on": round(off[1] / on[1], 2),
        "epoch1_on_over_off": round(on[0] / off[0], 2),
        "cache_bytes_per_video": {str(k): v for k, v in sizes.items()},
        "workers": args.workers,
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{args.videos} videos of {figures['video']} ({mp4 / 2**20:.2f} MiB each as mp4), "
        f"default video-action run (size 32), data.num_workers={args.workers}"
    )
    print(f"{'epoch':>5}  {'cache off (s)':>13}  {'cache on (s)':>12}  {'off/on':>6}")
    for epoch, (a, b) in enumerate(zip(off, on, strict=True), 1):
        print(f"{epoch:>5}  {a:>13.2f}  {b:>12.2f}  {a / b:>6.2f}")
    ratio = on[0] / on[1]
    verdict = "meets" if ratio >= GOAL else "misses"
    print(f"cache on: epoch 1 / epoch 2 = {ratio:.2f}x ({verdict} the goal of {GOAL:g}x)")
    print(f"cache off: epoch 1 / epoch 2 = {off[0] / off[1]:.2f}x")
    print(
        f"epoch 2: cache off / on = {off[1] / on[1]:.2f}x; "
        f"epoch 1: cache on / off = {on[0] / off[0]:.2f}x (the whole-video first decode)"
    )
    for size, nbytes in sizes.items():
        print(f"cache bytes per video at size {size}: {nbytes:,} ({nbytes / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
