"""The shared runner on a GPU (or the CPU): training throughput against a hand-written loop, the
data loader against the model, 32 vs 16-mixed vs bf16-mixed, and ``train.compile`` on vs off.

Cases: each task's default (image-classify, video-action, seg-refine; fewer generated videos)
and a real-data video-action configuration (resnet18 frame encoder, 112x112, T=16) on H.264 mp4
files of 340x256 that it writes with PyAV (or ``--videos DIR``, laid out ``DIR/<class>/*.mp4``).

- runner vs hand-written loop: both train the same model on the same clips decoded once into
  memory (data loading excluded on both sides): ``rnnvision_kit.runner.train`` on an in-memory
  copy of the task's data (the task's own step, metrics and settings), and a plain loop
  (DataLoader over the same tensors, ``task.step``, backward, clipping, optimizer step). The
  first epoch of each is warm-up, not timed. The runner's figure includes its per-epoch
  validation (on 1 sample) and checkpoints; "runner w/o ckpt" leaves the checkpoint writes out.
- the loader alone: the real files decoded at 0, 4 and 16 workers (clips/s) beside the model's
  training rate, and which of the two is the bottleneck.
- precision 32 / 16-mixed (CUDA only) / bf16-mixed and compile off / on, through the runner, for
  the real-data configuration.

    python benchmarks/gpu_train.py [--device cpu|cuda] [--quick] [--videos DIR] [--json OUT]
                                   [--only CASE ...] [--steps N] [--epochs N] [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnnvision_kit import DataBundle, ModelContext, StepContext, hookimpl  # noqa: E402
from rnnvision_kit.data import write_video  # noqa: E402
from rnnvision_kit.plugins import PluginHost, build_host  # noqa: E402
from rnnvision_kit.runner import train  # noqa: E402
from rnnvision_kit.runner.pipeline import TaskHandle, build, configure, open_task  # noqa: E402

REAL = "video-action-real"
REAL_SETTINGS = ["model.backbone=resnet18", "data.size=112", "data.num_frames=16"]
WORKERS = (0, 4, 16)
VIDEO_W, VIDEO_H, FPS = 340, 256, 25


@dataclass
class Case:
    """One configuration: a task, its ``--set`` overrides, and (batch, steps per epoch) per mode
    (``gpu``, ``cpu``, ``quick``)."""

    name: str
    task: str
    overrides: list[str]
    sizes: dict[str, tuple[int, int]]


# Validation runs on one sample (one clip): the runner's per-epoch extras stay small.
ONE_CLIP = "data.test_clips=1"
CASES = [
    Case("image-classify", "image-classify", [],
         {"gpu": (64, 100), "cpu": (64, 40), "quick": (64, 20)}),
    Case("video-action", "video-action", ["data.videos_per_class=[4]", ONE_CLIP],
         {"gpu": (32, 100), "cpu": (32, 20), "quick": (16, 20)}),
    Case("seg-refine", "seg-refine", ["data.videos=6"],
         {"gpu": (4, 100), "cpu": (4, 10), "quick": (2, 4)}),
    Case(REAL, "video-action", [*REAL_SETTINGS, "data.frame_cache=false", ONE_CLIP],
         {"gpu": (32, 80), "cpu": (4, 6), "quick": (2, 4)}),
]  # fmt: skip


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:160]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------- videos


def write_videos(root: Path, per_class: int, seconds: float = 3.0) -> Path:
    """``root/<class>/<i>.mp4``: a smoothed random texture scrolling left or right (H.264,
    340x256, 25 fps), so the decoder has real work to do."""
    rng = np.random.default_rng(0)
    count = int(seconds * FPS)
    for label, direction in (("left", -1), ("right", 1)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = torch.from_numpy(rng.integers(0, 256, (3, VIDEO_H, 2 * VIDEO_W), np.uint8))
            texture = nn.functional.avg_pool2d(noise.float()[None], 5, 1, 2)[0].byte()
            texture = texture.permute(1, 2, 0).numpy()
            frames = np.empty((count, VIDEO_H, VIDEO_W, 3), np.uint8)
            for t in range(count):
                x = (direction * t * 4) % VIDEO_W
                frames[t] = texture[:, x : x + VIDEO_W]
            write_video(root / label / f"{i:03d}.mp4", frames, fps=FPS)
    return root


# ----------------------------------------------------------------------- in-memory data


class Repeat(Dataset):
    """``length`` items cycling over ``items`` (decoded once, held in memory)."""

    def __init__(self, items: Sequence[Any], length: int) -> None:
        self.items, self.length = list(items), length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Any:
        return self.items[index % len(self.items)]


def in_memory(data: DataBundle, train_length: int, unique: int, val: int = 1) -> DataBundle:
    """The bundle's first ``unique`` training items repeated to ``train_length``, and ``val``
    validation items (also the test split), all decoded now."""
    items = [data.train[i % len(data.train)] for i in range(min(unique, train_length))]
    held = [data.val[i] for i in range(min(val, len(data.val)))]
    return DataBundle(
        Repeat(items, train_length), Repeat(held, len(held)), Repeat(held, len(held)), data.spec
    )


def bench_host(handle: TaskHandle, bundle: DataBundle) -> PluginHost:
    """The usual plugins plus task ``bench-<task>``: the same task class, whose data is
    ``bundle`` (so the runner trains on the in-memory tensors)."""
    original = type(handle.task)

    class InMemory(original):  # type: ignore[misc, valid-type]
        def build_data(self, ctx: Any) -> DataBundle:
            return bundle

        def metrics(self, ctx: Any) -> Any:  # its own metrics are registered by its plugin
            return super().metrics(dataclasses.replace(ctx, plugin=handle.plugin))

    class Plugin:
        @hookimpl
        def rnnkit_register_tasks(self, register: Any) -> None:
            register(
                f"bench-{handle.name}", InMemory, kind=handle.kind, capabilities=handle.capabilities
            )

    host = build_host()
    host.load_object(Plugin(), "bench")
    return host


# ------------------------------------------------------------------------------ measuring


@dataclass
class Measure:
    """What one training measurement gives: samples/s, and a note when it could not run."""

    rate: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class EpochClock:
    """Runner events that time the epochs: the end of each, and the runner's own epoch seconds
    (training + validation, before the checkpoints are written)."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.seconds: list[float] = []

    def on_run_start(self, run: Any) -> None:
        pass

    def on_epoch_end(self, run: Any, epoch: int, metrics: dict[str, float]) -> None:
        self.ends.append(time.perf_counter())
        self.seconds.append(float(metrics.get("seconds", math.nan)))

    def on_run_end(self, run: Any, summary: dict[str, Any]) -> None:
        pass

    def on_exception(self, run: Any, error: BaseException) -> None:
        pass


def through_runner(
    handle: TaskHandle, bundle: DataBundle, overrides: list[str], out: str, samples: int
) -> Measure:
    """Samples/s of ``rnnvision_kit.runner.train`` after its first (warm-up) epoch."""
    host = bench_host(handle, bundle)
    task = open_task(host.registries, f"bench-{handle.name}")
    config = configure(task, overrides=[*overrides, f"out_dir={out}"])
    clock, err = EpochClock(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            train(host.registries, config, events=clock, quiet=True, echo=lambda *_: None)
    except Exception as error:  # noqa: BLE001 - a benchmark row, not a crash
        return Measure(note=one_line(error))
    warned = [line for line in err.getvalue().splitlines() if line.startswith("rnnkit:")]
    epochs = len(clock.ends) - 1
    if epochs < 1:
        return Measure(note="fewer than 2 epochs ran")
    rate = samples * epochs / (clock.ends[-1] - clock.ends[0])
    without = samples * epochs / sum(clock.seconds[1:])
    return Measure(rate, "; ".join(warned)[:200], {"without_checkpoints": without})


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}


def hand_loop(
    handle: TaskHandle,
    registries: Any,
    config: Any,
    bundle: DataBundle,
    device: torch.device,
    epochs: int,
    precision: str = "32",
) -> Measure:
    """Samples/s of a plain PyTorch loop through the task's ``step``, after a warm-up epoch."""
    torch.manual_seed(config.seed)
    ctx = ModelContext(config, bundle.spec, registries, handle.name, handle.plugin, "train")
    model = handle.build_model(ctx).to(device)
    t = config.train
    kwargs: dict[str, Any] = {"lr": t.lr, "weight_decay": t.weight_decay}
    if t.optimizer in ("sgd", "rmsprop"):
        kwargs["momentum"] = t.momentum
    optimizer = OPTIMIZERS[t.optimizer](model.parameters(), **kwargs)
    if device.type == "cuda":  # as the runner sets it
        torch.backends.cudnn.benchmark = t.cudnn_benchmark
    dtype = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    loader = DataLoader(
        bundle.train,
        batch_size=config.data.batch_size,
        shuffle=True,
        pin_memory=device.type == "cuda",
    )
    step_ctx = StepContext(config, bundle.spec, training=True)

    def to(batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            return batch.to(device, non_blocking=True)
        if isinstance(batch, list | tuple):
            return type(batch)(to(b) for b in batch)
        if isinstance(batch, dict):
            return {k: to(v) for k, v in batch.items()}
        return batch

    def epoch() -> None:
        model.train()
        total = torch.zeros((), device=device)
        for batch in loader:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = handle.task.step(step_ctx, model, to(batch)).loss
            scaler.scale(loss).backward()
            if t.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            total += loss.detach()
        float(total)  # waits for the device, as the runner's epoch loss does

    try:
        epoch()  # warm-up: allocator, cudnn.benchmark
    except Exception as error:  # noqa: BLE001
        return Measure(note=one_line(error))
    sync(device)
    started = time.perf_counter()
    for _ in range(epochs):
        epoch()
    sync(device)
    return Measure(len(bundle.train) * epochs / (time.perf_counter() - started))


def loader_rate(dataset: Dataset, workers: int, batch: int, device: torch.device) -> float:
    """Clips/s of a DataLoader decoding ``dataset`` with ``workers`` (after a warm-up batch per
    worker), as the runner builds it: persistent workers, prefetch, pinned memory on CUDA."""
    batches = max(4, 3 * workers)
    sampler = RandomSampler(
        dataset,
        replacement=True,
        num_samples=batches * batch,
        generator=torch.Generator().manual_seed(0),
    )
    extra: dict[str, Any] = {"persistent_workers": True, "prefetch_factor": 2} if workers else {}
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        **extra,
    )
    warm = max(1, workers)
    iterator = iter(loader)
    for _ in range(warm):
        next(iterator)
    started, clips = time.perf_counter(), 0
    for x, *_ in iterator:
        clips += len(x)
    rate = clips / (time.perf_counter() - started)
    del iterator, loader
    return rate


# ---------------------------------------------------------------------------------- a case


@dataclass
class Prepared:
    handle: TaskHandle
    registries: Any
    config: Any
    real: DataBundle  # the task's own data (files), for the loader
    memory: DataBundle  # decoded once
    batch: int
    steps: int
    overrides: list[str]


def prepare(
    case: Case, mode: str, device: torch.device, videos: Path | None, steps: int | None
) -> Prepared:
    """Build the case's data and model through the pipeline; decode its clips into memory."""
    batch, default_steps = case.sizes[mode]
    steps = steps or default_steps
    overrides = [
        *case.overrides,
        f"data.batch_size={batch}",
        f"train.max_steps_per_epoch={steps}",
        f"train.device={device}",
        "data.num_workers=0",
    ]
    host = build_host()
    handle = open_task(host.registries, case.task)
    data = f"videofolder:{videos}" if case.name == REAL else None
    config = configure(handle, data=data, overrides=overrides)
    built = build(handle, host.registries, config, "train")
    assert built.data is not None
    unique = min(batch * steps, 64 if mode == "gpu" else 2 * batch)
    memory = in_memory(built.data, batch * steps, unique)
    return Prepared(
        handle, host.registries, built.config, built.data, memory, batch, steps, overrides
    )


def runner_rate(p: Prepared, epochs: int, out: str, settings: Sequence[str] = ()) -> Measure:
    overrides = [*p.overrides, f"train.epochs={epochs + 1}", *settings]
    return through_runner(p.handle, p.memory, overrides, out, p.batch * p.steps)


def best(measures: list[Measure]) -> Measure:
    """The fastest of repeated measurements (the first one when none ran)."""
    return max(measures, key=lambda m: m.rate or -1.0)


def fmt(value: float | None, unit: str = "/s") -> str:
    return "-" if value is None else f"{value:,.1f}{unit}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"


# ------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", choices=["cpu", "cuda"], default=default)
    parser.add_argument("--quick", action="store_true", help="small counts (a CPU smoke run)")
    parser.add_argument("--videos", type=Path, help="DIR/<class>/*.mp4 (default: written here)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    parser.add_argument("--only", nargs="+", choices=[c.name for c in CASES])
    parser.add_argument("--steps", type=int, help="steps per epoch (default: per case)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs after the warm-up")
    parser.add_argument("--repeats", type=int, default=1, help="runner and hand loop, best of N")
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # 16 workers
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available here (use --device cpu)")
    device = torch.device(args.device)
    mode = "quick" if args.quick else ("gpu" if device.type == "cuda" else "cpu")
    cases = [c for c in CASES if not args.only or c.name in args.only]
    results: dict[str, Any] = {"device": describe(device), "mode": mode, "cases": {}}

    def save() -> None:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")

    print(results["device"], f"mode={mode}", flush=True)
    with tempfile.TemporaryDirectory(prefix="rnnkit-gpu-bench-") as tmp:
        videos = args.videos
        if any(c.name == REAL for c in cases) and videos is None:
            started = time.perf_counter()
            videos = write_videos(Path(tmp, "videos"), 3 if mode == "quick" else 8)
            count = len(list(videos.rglob("*.mp4")))
            print(
                f"wrote {count} H.264 videos {VIDEO_W}x{VIDEO_H} in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
        print(
            f"\n{'case':18s} {'batch':>5s} {'steps':>5s} {'hand loop':>12s} {'runner':>12s} "
            f"{'runner/hand':>11s} {'w/o ckpt':>9s}",
            flush=True,
        )
        prepared: dict[str, Prepared] = {}
        for case in cases:
            p = prepare(case, mode, device, videos, args.steps)
            prepared[case.name] = p
            hands, runners = [], []
            for _ in range(args.repeats):  # interleaved, best of N: a shared machine is noisy
                hands.append(
                    hand_loop(p.handle, p.registries, p.config, p.memory, device, args.epochs)
                )
                runners.append(runner_rate(p, args.epochs, str(Path(tmp, "runs"))))
            hand, runner = best(hands), best(runners)
            plain = runner.extra.get("without_checkpoints")
            print(
                f"{case.name:18s} {p.batch:5d} {p.steps:5d} {fmt(hand.rate):>12s} "
                f"{fmt(runner.rate):>12s} {ratio(runner.rate, hand.rate):>11s} "
                f"{ratio(plain, hand.rate):>9s}  {hand.note or runner.note}",
                flush=True,
            )
            results["cases"][case.name] = {
                "batch": p.batch,
                "steps_per_epoch": p.steps,
                "hand_loop": hand.rate,
                "runner": runner.rate,
                "runner_without_checkpoints": plain,
                "runner_over_hand": None
                if not (hand.rate and runner.rate)
                else runner.rate / hand.rate,
                "notes": [n for n in (hand.note, runner.note) if n],
            }
            save()
        if REAL in prepared:
            real(prepared[REAL], device, args, results, save, str(Path(tmp, "runs")))
    goals(results)
    save()


def real(
    p: Prepared,
    device: torch.device,
    args: argparse.Namespace,
    results: dict[str, Any],
    save: Callable[[], None],
    out: str,
) -> None:
    """Precision, the loader, then compile (the slowest), for the real-data configuration."""
    fp32 = results["cases"][REAL]["runner"]
    print(f"\n{REAL}: precision through the runner (samples/s, ratio to 32)")
    precision: dict[str, Any] = {"32": fp32}
    print(f"  {'32':10s} {fmt(fp32):>12s}  x1.00")
    for name in ("bf16-mixed", "16-mixed"):
        if name == "16-mixed" and device.type != "cuda":
            print(f"  {name:10s} n/a (CUDA only)")
            precision[name] = None
            continue
        m = runner_rate(p, args.epochs, out, [f"train.precision={name}"])
        precision[name] = m.rate
        print(f"  {name:10s} {fmt(m.rate):>12s}  x{ratio(m.rate, fp32)}  {m.note}", flush=True)
    results["precision"] = {
        "samples_per_s": precision,
        "over_32": {k: (v / fp32 if v and fp32 else None) for k, v in precision.items()},
    }
    save()

    model = {k: v for k, v in precision.items() if v}
    fastest = max(model, key=lambda k: model[k])
    print(
        f"\n{REAL}: the DataLoader alone, decoding the files (batch {p.batch}, frame cache "
        f"off, {os.cpu_count()} CPUs) vs the model (runner, {fastest}: {fmt(model[fastest])})"
    )
    loader: dict[str, float] = {}
    for workers in args.workers:
        rate = loader_rate(p.real.train, workers, p.batch, device)
        loader[str(workers)] = rate
        bound = "the loader" if rate < model[fastest] else "the model"
        print(
            f"  {workers:2d} workers {fmt(rate, ' clips/s'):>16s}  loader/model "
            f"{rate / model[fastest]:.2f}  bottleneck: {bound}",
            flush=True,
        )
    results["loader"] = {
        "clips_per_s": loader,
        "model_samples_per_s": model[fastest],
        "model_precision": fastest,
        "cpus": os.cpu_count(),
    }
    save()

    print(f"\n{REAL}: compile (32), through the runner")
    on = runner_rate(p, args.epochs, out, ["train.compile=true"])
    print(
        f"  off {fmt(fp32)}  on {fmt(on.rate)}  on/off {ratio(on.rate, fp32)}"
        f"{'  (' + on.note + ')' if on.note else ''}",
        flush=True,
    )
    results["compile"] = {"off": fp32, "on": on.rate, "note": on.note}
    save()


def goals(results: dict[str, Any]) -> None:
    """The issue's goals beside what was measured."""
    cases, lines = results["cases"], []
    for name, case in cases.items():
        lines.append((f"runner/hand loop >= 0.95 ({name})", case["runner_over_hand"], 0.95))
    if "loader" in results:
        rate = results["loader"]["clips_per_s"].get("16")
        model = results["loader"]["model_samples_per_s"]
        lines.append(("loader at 16 workers / model >= 1", rate and rate / model, 1.0))
    if "precision" in results:
        lines.append(("bf16-mixed / 32 >= 1.5", results["precision"]["over_32"]["bf16-mixed"], 1.5))
    print("\ngoals")
    for label, value, goal in lines:
        verdict = "-" if value is None else ("met" if value >= goal else "not met")
        print(f"  {label:44s} {'-' if value is None else f'{value:.2f}':>6s}  {verdict}")


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    threads = torch.get_num_threads()
    return f"CPU ({os.cpu_count()} cores, {threads} torch threads), torch {torch.__version__}"


if __name__ == "__main__":
    main()
