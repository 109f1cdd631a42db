"""Forward+backward time and peak memory: the project's ConvGRU vs the six-convolution reference.

Usage: ``python benchmarks/convgru.py [--device cuda] [--iters 10]``

Variants, all one layer with the same shapes:

* ``naive``: ``NaiveConvGRUCell`` (W_xr, W_hr, W_xz, W_hz, W_xn, W_hn) unrolled over time;
* ``concat``: the other fusion, one conv over ``[x, h]`` for r|z and one over ``[x, r*h]``;
* ``ours``: ``rnnvision_kit.nn.convrnn.ConvGRU``.

Times are measured in this process, variants interleaved round by round (so a noisy neighbour
hurts all alike), median per variant. Peak memory is measured in a fresh subprocess per variant:
``torch.cuda.max_memory_allocated`` on CUDA; on CPU the growth of the peak RSS over one step
(``/proc/self/status`` VmHWM after resetting it through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from rnnvision_kit.nn._reference import NaiveConvGRUCell, naive_sequence  # noqa: E402
from rnnvision_kit.nn.convrnn import ConvGRU  # noqa: E402

VARIANTS = ("naive", "concat", "ours")


class ConcatConvGRUCell(nn.Module):
    """Alternative fusion kept for comparison: convs over ``[x, h]`` and ``[x, r*h]``."""

    def __init__(self, cin: int, hid: int, k: int) -> None:
        super().__init__()
        self.hid = hid
        self.gates = nn.Conv2d(cin + hid, 2 * hid, k, padding=k // 2)
        self.candidate = nn.Conv2d(cin + hid, hid, k, padding=k // 2)

    def forward(self, x: Tensor) -> Tensor:
        b, _, _, height, width = x.shape
        h = x.new_zeros(b, self.hid, height, width)
        outputs = []
        for xt in x.unbind(1):
            r, z = torch.sigmoid(self.gates(torch.cat([xt, h], 1))).chunk(2, 1)
            n = torch.tanh(self.candidate(torch.cat([xt, r * h], 1)))
            h = torch.lerp(h, n, z)
            outputs.append(h)
        return torch.stack(outputs, 1)


def build(variant: str, a: argparse.Namespace) -> tuple[Callable[[], Tensor], Tensor]:
    """Return ``(run, x)``: ``run()`` computes the outputs ``B,T,hidden,H,W`` for input ``x``."""
    torch.manual_seed(0)
    device = torch.device(a.device)
    x = torch.randn(a.batch, a.steps, a.channels, a.size, a.size, device=device)
    if variant == "naive":
        cell = NaiveConvGRUCell(a.channels, a.hidden, a.kernel).to(device)
        return (lambda: naive_sequence(cell, x)), x
    if variant == "concat":
        module = ConcatConvGRUCell(a.channels, a.hidden, a.kernel).to(device)
        return (lambda: module(x)), x
    layer = ConvGRU(a.channels, a.hidden, kernel_size=a.kernel).to(device)
    return (lambda: layer(x)[0]), x


def step(run: Callable[[], Tensor]) -> None:
    run().square().mean().backward()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_variants(a: argparse.Namespace) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock and process CPU seconds per iteration, per variant."""
    runs = {v: build(v, a)[0] for v in VARIANTS}
    for run in runs.values():
        for _ in range(a.warmup):
            step(run)
    wall: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(a.iters):
        for v, run in runs.items():
            sync(a.device)
            t0, c0 = time.perf_counter(), time.process_time()
            step(run)
            sync(a.device)
            wall[v].append(time.perf_counter() - t0)
            cpu[v].append(time.process_time() - c0)
    return wall, cpu


def _peak_rss_kib() -> int:
    """This process's peak RSS in KiB: ``VmHWM`` (resettable), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _reset_peak_rss() -> int:
    """Reset the peak RSS to the current RSS where Linux allows it; return the new baseline.

    Importing torch peaks above what one step adds, and ``ru_maxrss`` even carries the parent's
    peak across fork+exec, so a plain high-water mark would hide the step's growth.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        print(
            "warning: cannot reset the peak RSS; memory figures are lower bounds", file=sys.stderr
        )
    return _peak_rss_kib()


def peak_memory_worker(a: argparse.Namespace) -> None:
    """Run in a subprocess: print the peak extra memory (MiB) of one forward+backward."""
    run, _ = build(a.worker, a)
    if a.device.startswith("cuda"):
        step(run)  # cuDNN workspaces and the like settle on the first call
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step(run)
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        base = _reset_peak_rss()
        step(run)
        peak = (_peak_rss_kib() - base) / 1024
    print(json.dumps({"variant": a.worker, "peak_mib": peak}))


def peak_memory(variant: str, argv: list[str]) -> float:
    cmd = [sys.executable, __file__, *argv, "--worker", variant]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    a = parse(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.worker:
        peak_memory_worker(a)
        return
    print(
        f"ConvGRU fwd+bwd on {a.device}: B={a.batch} T={a.steps} C={a.channels} "
        f"hidden={a.hidden} {a.size}x{a.size} k={a.kernel}, threads={torch.get_num_threads()}, "
        f"{a.warmup} warm-up + {a.iters} timed iterations"
    )
    times, cpu_times = time_variants(a)
    medians = {v: statistics.median(ts) for v, ts in times.items()}
    cpu = {v: statistics.median(ts) for v, ts in cpu_times.items()}
    memory = {v: peak_memory(v, argv) for v in VARIANTS}
    unit = "MiB (max_memory_allocated)" if a.device.startswith("cuda") else "MiB (peak RSS growth)"
    for v in VARIANTS:
        print(
            f"  {v:7s} median {medians[v] * 1e3:8.1f} ms  min {min(times[v]) * 1e3:8.1f} ms  "
            f"cpu {cpu[v] * 1e3:8.1f} ms  peak {memory[v]:7.1f} {unit}"
        )
    print(f"ratio naive/ours  = {medians['naive'] / medians['ours']:.2f} (median wall time)")
    print(f"ratio concat/ours = {medians['concat'] / medians['ours']:.2f}")
    if not a.device.startswith("cuda"):  # CPU time is steadier on a shared machine
        print(f"ratio naive/ours  = {cpu['naive'] / cpu['ours']:.2f} (median process CPU time)")
    print(f"memory ours/naive = {memory['ours'] / max(memory['naive'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
