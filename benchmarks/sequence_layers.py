"""Sequence layers against ``nn.GRU``: forward+backward time, and parallel mode vs step loop.

Usage: ``python benchmarks/sequence_layers.py [--T 64,784,4096] [--B 32] [--H 128] [--reps 5]
[--threads 2] [--chunk N] [--device cpu|cuda] [--json PATH]``

For each ``T``, on the same ``x: B,T,H`` (features in, ``H`` hidden, one layer):

* ``train``: forward + backward (``y.square().mean()``, gradients of the parameters) of ``nn.GRU``
  (fused kernel), :class:`~rnnvision_kit.nn.MinGRU`, :class:`~rnnvision_kit.nn.MinLSTM`,
  :class:`~rnnvision_kit.nn.LRU` and :class:`~rnnvision_kit.nn.S5` (state size = ``H``); the
  ratio is ``nn.GRU``'s time over the layer's (> 1: the layer is faster);
* ``parallel vs step``: forward only, no grad: ``layer(x)`` against ``T`` calls of ``layer.step``.

Variants run in one process, interleaved round by round (a noisy neighbour hurts all alike);
the figure is the median over ``--reps`` rounds after one warm-up round.

Measured (2026-12-06, this project's 2-core CPU shared with another process, B=32, H=128; the
2-thread figures are from a quiet minute, load ~1): T=784 fwd+bwd, 2 threads: nn.GRU 260 ms,
MinGRU 76 ms (3.4x), MinLSTM 107 ms (2.4x); 1 thread: 297 / 105 (2.8x) / 185 ms (1.6x). T=64:
2.8-3.1x (MinGRU), 2.0x (MinLSTM). T=4096, 1 thread: 1.8x / 1.2x (memory-bound; see the issue).
LRU and S5 (state size H; S5 keeps H/2 complex modes), 1 thread, load ~1.9, median of 5:
T=64 1.6x / 3.0x, T=784 1.6x / 3.0x (LRU: 187 ms against nn.GRU's 299; its four H x 2H
matmuls, input and output, are half its time); parallel vs step loop 3.6x / 5.0x at T=784.
Under contention the 2-thread nn.GRU figures swing by 5-10x: compare ratios from one quiet run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from rnnvision_kit.nn import LRU, S5, MinGRU, MinLSTM  # noqa: E402

LAYERS = ("MinGRU", "MinLSTM", "LRU", "S5")


def timed(fn: Callable[[], object], device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def train_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        out = model(x)
        y = out[0] if isinstance(out, tuple) else out
        model.zero_grad(set_to_none=True)
        y.square().mean().backward()

    return run


def step_loop(layer: MinGRU | MinLSTM | LRU | S5, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            state = layer.initial_state(x.shape[0])
            for t in range(x.shape[1]):
                _, state = layer.step(x[:, t], state)

    return run


def parallel(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            layer(x)

    return run


def bench(variants: dict[str, Callable[[], None]], reps: int, device: str) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm-up
        timed(fn, device)
    for _ in range(reps):
        for name, fn in variants.items():
            times[name].append(timed(fn, device))
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", default="64,784,4096", help="sequence lengths, comma-separated")
    parser.add_argument("--B", type=int, default=32)
    parser.add_argument("--H", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=None, help="scan chunk (default: auto)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-step", action="store_true", help="skip parallel vs step loop")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.manual_seed(0)
    device, H, B = args.device, args.H, args.B
    layers: dict[str, nn.Module] = {
        "nn.GRU": nn.GRU(H, H, batch_first=True),
        "MinGRU": MinGRU(H, H, chunk=args.chunk),
        "MinLSTM": MinLSTM(H, H, chunk=args.chunk),
        "LRU": LRU(H, H, chunk=args.chunk),
        "S5": S5(H, H, chunk=args.chunk),
    }
    for layer in layers.values():
        layer.to(device)
    print(
        f"device={device} threads={torch.get_num_threads()} B={B} H={H} reps={args.reps} "
        f"torch={torch.__version__}"
    )
    results = []
    for T in [int(t) for t in args.T.split(",")]:
        x = torch.randn(B, T, H, device=device)
        train = bench({n: train_step(m, x) for n, m in layers.items()}, args.reps, device)
        row: dict[str, object] = {"T": T, "train_ms": train}
        gru = train["nn.GRU"]
        line = f"T={T:5d} train fwd+bwd: nn.GRU {gru:8.1f} ms"
        for name in LAYERS:
            line += f" | {name} {train[name]:8.1f} ms ({gru / train[name]:.2f}x faster)"
        print(line, flush=True)
        if not args.no_step:
            variants: dict[str, Callable[[], None]] = {}
            for name in LAYERS:
                variants[f"{name} parallel"] = parallel(layers[name], x)
                variants[f"{name} step"] = step_loop(layers[name], x)  # type: ignore[arg-type]
            fwd = bench(variants, max(1, args.reps // 2), device)
            row["forward_ms"] = fwd
            line = f"T={T:5d} forward, parallel vs step loop:"
            for name in LAYERS:
                p, s = fwd[f"{name} parallel"], fwd[f"{name} step"]
                line += f" | {name} {p:7.1f} vs {s:8.1f} ms ({s / p:.1f}x)"
            print(line, flush=True)
        results.append(row)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
