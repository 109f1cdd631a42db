"""Streaming with a carried state vs today's sliding-window ``rnnkit predict`` on long videos.

1. Trains a tiny video-action run (the default model: small-cnn, GRU head, ``last`` pooling;
   ``--set KEY=VALUE`` changes it, e.g. ``model.backbone=resnet18 data.size=112``).
2. On a 60 s video (H.264, 25 fps, ``--width``x``--height``, a texture scrolling under noise):
   ``rnnkit stream``'s path (the core's frame decoder and the task's ``stream``) against
   ``rnnkit predict``'s sliding window (``plugins/rnnkit_video/predict.py``: clips of T frames
   every ``stride`` frames, hop half a clip span). Counts encoder calls and encoded frames (a
   forward hook on the encoder), predictions made, wall time; prints them side by side with the
   ratios. Goal: >= T/2 times fewer encoder frames per prediction and a matching cut in
   milliseconds per prediction.
3. Memory of a fresh process streaming 1 min vs ``--long-minutes`` (20) of video at
   ``--memory-size`` pixels, records to a file: its peak RSS, the RSS while streaming (sampled
   from the first record on) and the Python/NumPy allocations' peak (tracemalloc); goal: flat
   (<= 1.2x).

    python benchmarks/streaming.py [--seconds 60] [--long-minutes 20] [--set KEY=VALUE] [--json]
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
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rnnvision_kit.data import VideoWriter  # noqa: E402

FPS = 25
MEMORY_GOAL = 1.2
RSS_PROBE = """
import json, os, resource, sys, threading, time, tracemalloc
from pathlib import Path
from rnnvision_kit.plugins import build_host
from rnnvision_kit.runner.stream import stream_run

page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
state = {"base": None, "peak": 0, "done": False}
def sample():
    while not state["done"]:
        if state["base"] is not None:
            state["peak"] = max(state["peak"], rss())
        time.sleep(0.02)
def first(record):
    if state["base"] is None:
        state["base"] = state["peak"] = rss()
        tracemalloc.start()
threading.Thread(target=sample, daemon=True).start()
run_dir, video, out = sys.argv[1:4]
summary = stream_run(build_host().registries, Path(run_dir), video, out=Path(out),
                     timeout=60, on_record=first)
state["done"] = True
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"ended": summary.ended, "frames": summary.read,
                  "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "rss_at_first_record": state["base"], "rss_peak_after": state["peak"],
                  "traced_peak": traced}))
"""


def write_long_video(path: Path, seconds: float, width: int, height: int, seed: int = 0) -> Path:
    """A smoothed random texture scrolling right under light noise, written frame by frame."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, size=(height // 4 + 1, width // 2 + 1, 3), dtype=np.uint8)
    texture = texture.repeat(4, axis=0).repeat(4, axis=1)[:height]
    span = texture.shape[1] - width
    with VideoWriter(path, fps=FPS) as writer:
        for i in range(int(seconds * FPS)):
            dx = (i * 2) % span
            frame = texture[:, dx : dx + width].astype(np.int16)
            frame += rng.integers(-6, 7, size=frame.shape, dtype=np.int16)
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    return path


def train_run(root: Path, settings: list[str]) -> Path:
    command = [sys.executable, "-m", "rnnvision_kit", "run", "--task", "video-action"]
    command += ["--set", "data.videos_per_class=2", "--epochs", "1", "--seed", "1"]
    command += ["--set", "train.max_steps_per_epoch=2", "--set", "data.batch_size=4"]
    for setting in settings:
        command += ["--set", setting]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RNNKIT_CACHE": str(root / "cache")}
    done = subprocess.run(
        [*command, "--json"], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"training failed:\n{done.stderr}")
    return root / json.loads(done.stdout)["run_dir"]


class EncoderCount:
    """Counts calls and frames of a model's frame encoder."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        self.calls = self.frames = 0
        self.handle = encoder.register_forward_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.calls += 1
        self.frames += int(args[0].shape[0])

    def reset(self) -> None:
        self.calls = self.frames = 0


def compare(run_dir: Path, video: Path, out_dir: Path) -> dict[str, Any]:
    """Stream vs sliding window on ``video`` with the run's model; figures of each."""
    from rnnkit_video.predict import predict_video

    from rnnvision_kit import PredictContext, StreamContext
    from rnnvision_kit.plugins import build_host
    from rnnvision_kit.runner.pipeline import build, load_run
    from rnnvision_kit.runner.stream import open_frames

    registries = build_host().registries
    saved = load_run(registries, run_dir)
    built = build(
        saved.task, registries, saved.config, "predict", spec=saved.spec,
        weights=saved.checkpoint["model"],
    )  # fmt: skip
    model, spec, device = built.model.eval(), built.spec, torch.device("cpu")
    counter = EncoderCount(model.encoder)
    results: dict[str, Any] = {"T": spec.num_frames, "stride": spec.stride}

    with torch.inference_mode():
        start = time.perf_counter()
        decoded = sum(1 for _ in open_frames(str(video), (spec.height, spec.width), timeout=30))
        results["decode_only"] = {"wall_s": time.perf_counter() - start, "frames": decoded}
        frames = open_frames(str(video), (spec.height, spec.width), timeout=30)
        ctx = StreamContext(model, frames, saved.config, spec, device, 1, 5, out_dir / "s")
        start = time.perf_counter()
        records = list(saved.task.stream(ctx))
        wall = time.perf_counter() - start
        results["stream"] = {
            "wall_s": wall,
            "video_frames": frames.read,
            "encoder_calls": counter.calls,
            "encoded_frames": counter.frames,
            "predictions": len(records) - 1,  # the last record is the timeline
            "first_prediction_after_frames": 1,
        }
        counter.reset()
        pctx = PredictContext(model, (video,), saved.config, spec, device, 5, out_dir / "p")
        start = time.perf_counter()
        record = predict_video(pctx, video)
        wall = time.perf_counter() - start
        span = (spec.num_frames - 1) * spec.stride + 1
        results["window"] = {
            "wall_s": wall,
            "video_frames": record["frames"],
            "encoder_calls": counter.calls,
            "encoded_frames": counter.frames,
            "predictions": len(record["timeline"]),
            "first_prediction_after_frames": span,
        }
    for side in ("stream", "window"):
        r = results[side]
        r["ms_per_video_frame"] = 1000 * r["wall_s"] / r["video_frames"]
        r["ms_per_prediction"] = 1000 * r["wall_s"] / r["predictions"]
        r["encoded_per_video_frame"] = r["encoded_frames"] / r["video_frames"]
        r["encoded_per_prediction"] = r["encoded_frames"] / r["predictions"]
    counter.handle.remove()
    return results


def stream_memory(run_dir: Path, video: Path, root: Path) -> dict[str, float]:
    """Memory of a fresh process streaming ``video`` (records to a file), in MiB: the process's
    peak RSS, the RSS at the first record and its peak after it (sampled every 20 ms), the
    Python/NumPy allocations' peak after the first record (tracemalloc), and wall seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", RSS_PROBE, str(run_dir), str(video)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, str(root / f"{video.stem}.jsonl")],
        cwd=root, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    try:
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise SystemExit(f"rnnkit stream failed on {video}:\n{done.stderr}") from None
    if figures["ended"] != "end":
        raise SystemExit(f"rnnkit stream on {video} ended by {figures['ended']}")
    mib = 1024 * 1024
    return {
        "frames": figures["frames"],
        "process_peak_rss_mb": figures["max_rss"] / mib,
        "rss_at_first_record_mb": figures["rss_at_first_record"] / mib,
        "rss_peak_streaming_mb": figures["rss_peak_after"] / mib,
        "rss_growth_mb": (figures["rss_peak_after"] - figures["rss_at_first_record"]) / mib,
        "traced_peak_mb": figures["traced_peak"] / mib,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the compared video")
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--long-minutes", type=float, default=20.0, help="0: skip the memory part")
    parser.add_argument("--memory-size", type=int, nargs=2, default=(64, 48), metavar=("W", "H"))
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="K=V")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory(prefix="rnnkit-streaming-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("RNNKIT_CACHE", str(root / "cache"))
        t0 = time.perf_counter()
        run_dir = train_run(root, args.settings)
        print(f"trained a tiny video-action run in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        video = write_long_video(root / "long.mp4", args.seconds, args.width, args.height)
        print(f"wrote a {args.seconds:g} s video in {time.perf_counter() - t0:.1f} s")
        figures = compare(run_dir, video, root)
        s, w, T = figures["stream"], figures["window"], figures["T"]
        print(f"\nT = {T} frames per clip, stride {figures['stride']}; {s['video_frames']} frames")
        rows = [
            ("wall s", "wall_s", "{:.2f}"),
            ("encoder calls (frames encoded)", "encoded_frames", "{:d}"),
            ("encoder invocations (batched)", "encoder_calls", "{:d}"),
            ("predictions", "predictions", "{:d}"),
            ("encoder calls / prediction", "encoded_per_prediction", "{:.2f}"),
            ("encoder calls / video frame", "encoded_per_video_frame", "{:.3f}"),
            ("ms / prediction", "ms_per_prediction", "{:.2f}"),
            ("ms / video frame", "ms_per_video_frame", "{:.3f}"),
            ("first prediction after frames", "first_prediction_after_frames", "{:d}"),
        ]
        print(f"{'':32}{'sliding window':>16}{'stream':>12}{'ratio':>10}")
        for label, key, fmt in rows:
            ratio = w[key] / s[key] if s[key] else float("nan")
            print(f"{label:32}{fmt.format(w[key]):>16}{fmt.format(s[key]):>12}{ratio:>9.2f}x")
        decode = figures["decode_only"]["wall_s"]
        print(
            f"decoding alone (the core's reader, same video): {decode:.2f} s, "
            f"{1000 * decode / s['video_frames']:.3f} ms / video frame; model and output of the "
            f"stream: {1000 * (s['wall_s'] - decode) / s['predictions']:.2f} ms / prediction"
        )
        per_prediction = w["encoded_per_prediction"] / s["encoded_per_prediction"]
        verdict = "met" if per_prediction >= T / 2 else "NOT met"
        print(
            f"goal >= T/2 = {T / 2:g}x fewer encoder calls per prediction: {per_prediction:.2f}x "
            f"({verdict}); ms per prediction {w['ms_per_prediction'] / s['ms_per_prediction']:.2f}x"
        )
        if args.long_minutes > 0:
            width, height = args.memory_size
            t0 = time.perf_counter()
            short = write_long_video(root / "one_min.mp4", 60, width, height, seed=1)
            long = write_long_video(root / "long_min.mp4", 60 * args.long_minutes, width, height, 2)
            print(f"\nwrote 1 and {args.long_minutes:g} min videos ({width}x{height}) in "
                  f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
            short_m = stream_memory(run_dir, short, root)
            long_m = stream_memory(run_dir, long, root)
            label = f"{args.long_minutes:g} min"
            print(f"{'rnnkit stream memory (MiB)':32}{'1 min':>12}{label:>12}{'ratio':>10}")
            for name, key in (
                ("frames", "frames"),
                ("process peak RSS", "process_peak_rss_mb"),
                ("RSS while streaming (peak)", "rss_peak_streaming_mb"),
                ("RSS growth after 1st record", "rss_growth_mb"),
                ("Python/NumPy peak (tracemalloc)", "traced_peak_mb"),
                ("wall s", "wall_s"),
            ):
                a, b = short_m[key], long_m[key]
                ratio = f"{b / a:>9.2f}x" if a else ""
                print(f"{name:32}{a:>12.2f}{b:>12.2f}{ratio}")
            ratio = long_m["rss_peak_streaming_mb"] / short_m["rss_peak_streaming_mb"]
            verdict = "met" if ratio <= MEMORY_GOAL else "NOT met"
            print(f"goal <= {MEMORY_GOAL}x peak RSS while streaming: {ratio:.2f}x ({verdict})")
            figures["memory"] = {"minutes": [1, args.long_minutes], "short": short_m}
            figures["memory"].update(long=long_m, ratio=ratio)
        if args.json:
            print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
