"""Runner overhead: the same GRU row model on the same in-memory tensors, trained once through
``rnnvision_kit``'s runner and once through a minimal hand-written PyTorch loop, in one process.

Prints samples/s of both and the ratio runner/plain (goal >= 0.95). Both do the same work per
step (Adam, gradient clipping at norm 1); the runner also runs its per-epoch validation on a
small split, checkpoints and logging, which count against it.

    python benchmarks/runner_overhead.py [--samples 16384] [--epochs 3] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from rnnvision_kit import (
    DataBundle,
    DataConfig,
    ImageSpec,
    RunConfig,
    StepOutput,
    Task,
    TrainConfig,
    hookimpl,
)
from rnnvision_kit.classification import classification_metrics
from rnnvision_kit.nn import build_head
from rnnvision_kit.plugins import PluginHost
from rnnvision_kit.runner.run import train

SEQ, FEATURES, CLASSES, HIDDEN, BATCH = 28, 28, 10, 128, 128


def make_tensors(n: int, seed: int) -> TensorDataset:
    """``1,28,28`` images in [0, 1] whose brightness hints at the label."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    images = torch.rand(n, 1, SEQ, FEATURES, generator=g) * 0.5 + labels.view(-1, 1, 1, 1) * 0.05
    return TensorDataset(images, labels)


def make_model() -> torch.nn.Module:
    """The rows of a ``B,1,28,28`` image read by a GRU."""
    head = build_head("gru", FEATURES, CLASSES, hidden_size=HIDDEN)
    return torch.nn.Sequential(torch.nn.Flatten(1, 2), head)


class BenchTask(Task):
    def default_config(self) -> RunConfig:
        return RunConfig(
            task="bench",
            data=DataConfig(source="bench", batch_size=BATCH),
            model=None,
            train=TrainConfig(optimizer="adam", lr=1e-3, schedule="none", grad_clip=1.0),
        )

    def build_model(self, ctx: Any) -> torch.nn.Module:
        return make_model()

    def step(self, ctx: Any, model: torch.nn.Module, batch: Any) -> StepOutput:
        x, y = batch
        logits = model(x)
        return StepOutput(F.cross_entropy(logits, y), logits.detach(), y)

    def metrics(self, ctx: Any) -> Any:
        return classification_metrics(ctx)


def through_runner(
    train_set: TensorDataset, val_set: TensorDataset, epochs: int, out: str
) -> float:
    spec = ImageSpec(tuple(str(i) for i in range(CLASSES)), 1, SEQ, FEATURES, (0.5,), (0.3,))

    class Plugin:
        @hookimpl
        def rnnkit_register_tasks(self, register: Any) -> None:
            register("bench", BenchTask, kind="image")

        @hookimpl
        def rnnkit_register_datasets(self, register: Any) -> None:
            bundle = DataBundle(train_set, val_set, val_set, spec)
            register("bench", lambda config: bundle, kind="image")

    host = PluginHost()
    host.load_core()
    host.load_object(Plugin(), "bench")
    config = BenchTask().default_config()
    config.train.epochs, config.out_dir = epochs, out
    started = time.perf_counter()
    train(host.registries, config, events=host.events, quiet=True, echo=lambda *_: None)
    return time.perf_counter() - started


def plain_loop(train_set: TensorDataset, epochs: int) -> float:
    torch.manual_seed(0)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train_set, batch_size=BATCH, shuffle=True)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_set = make_tensors(args.samples, 0)
    val_set = make_tensors(max(256, args.samples // 64), 1)
    seen = args.samples * args.epochs
    runner_times, plain_times = [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):  # interleaved, best of N: the machine is noisy
            plain_times.append(plain_loop(train_set, args.epochs))
            runner_times.append(through_runner(train_set, val_set, args.epochs, out))
    plain, runner = seen / min(plain_times), seen / min(runner_times)
    print(
        f"threads={torch.get_num_threads()} samples={args.samples} epochs={args.epochs} "
        f"val={len(val_set)} batch={BATCH} GRU hidden={HIDDEN} seq={SEQ}x{FEATURES}"
    )
    print(f"plain loop : {plain:9.1f} samples/s")
    print(
        f"runner     : {runner:9.1f} samples/s (includes per-epoch validation, checkpoints, logs)"
    )
    print(f"ratio runner/plain = {runner / plain:.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
