"""Every sequence layer against ``nn.GRU``: training time, parallel vs step loop, streaming cost
against context length, peak training memory (issue 18, item 6).

Usage::

    python benchmarks/sequence_layers.py [--lengths 64,784,4096] [--layers gru,mingru,...]
        [--B 32] [--H 128] [--repeats 5] [--threads 1] [--contexts 10,100,1000,10000]
        [--device cpu|cuda] [--chunk N] [--no-step] [--no-stream] [--no-memory]
        [--max-seconds 20] [--quick] [--json PATH]

Every layer is built by name, ``create_layer(name, H, H)`` with its default settings, one layer,
``x: B,T,H`` (``--T`` and ``--reps`` are the old names of ``--lengths`` and ``--repeats``):

1. **train**: forward + backward (``y.square().mean()``, gradients of the parameters) of the
   layer and of ``nn.GRU(H, H)`` (the fused kernel). All variants run in one process, interleaved
   round by round (a noisy neighbour hurts all alike); the figure is the median over
   ``--repeats`` rounds after one warm-up round; ``x GRU`` is ``nn.GRU``'s median over the
   layer's (> 1: the layer is faster).
2. **parallel vs step**: forward only, no grad, ``B,T``: ``layer(x)`` against ``T`` calls of
   ``layer.step`` from ``initial_state``; ratio step / parallel.
3. **streaming**: at ``B = 1`` each layer steps through ``max(--contexts)`` steps, keeping its
   state after 10, 100, 1000 and 10000 steps; then one more step from each kept state is timed,
   round-robin over layers and contexts (``--stream-rounds`` rounds, interleaved again), and the
   median ms per step at each context is reported with the ratio of the cost at the longest
   context to the shortest (goal: <= 1.2 for a recurrent layer). ``transformer`` streams through a
   fixed-size cache of ``window`` slots (64 by default): its cost is bounded by the window, not
   the context. Two more rows show what the context costs attention: ``transformer w=10000``
   (a 10,000-slot cache at every context) and ``transformer w=context`` (window = context, the
   cost of an unbounded KV cache at that context). ``state`` is the bytes of one sample's state
   from ``state_spec`` (float32; int64 entries 8 bytes).
4. **memory**: peak memory of one forward + backward at ``B,T``, beyond what was allocated before
   it (parameters and input): on CUDA ``torch.cuda.max_memory_allocated``; on CPU the peak of the
   running sum of every allocation and free by torch's CPU allocator during the pass, recorded by
   ``torch.profiler`` (``profile_memory=True``; its allocation events), i.e. activations saved
   for backward, temporaries and the parameter gradients. (Not RSS: glibc keeps freed pages.)

A layer whose warm-up pass at some ``T`` takes longer than ``--max-seconds`` is left out at
that and longer lengths, with a note. ``--quick``: T=64, 2 repeats, contexts 10 and 100, 5
stream rounds (unless given), for a smoke test. Tables are Markdown; ``--json`` also writes the figures.
``mamba`` and ``mlstm`` are included when ``create_layer`` can build them (else a note).

Measured (2026-12-06, this project's 2-core CPU shared with other jobs, load 3-4, 1 thread,
B=32, H=128, median of 5; compare ratios from one run, not times between runs): fwd+bwd x GRU at
T=64 / 784 / 4096: mingru 3.2 / 2.9 / 1.5, s5 2.9 / 3.0 / 1.9, lru 1.8 / 1.6 / 1.2, minlstm
2.2 / 1.9 / 1.1, mlstm 0.8 / 0.7 / 0.35, transformer 0.8 / 0.55 / 0.4, tcn 0.4 / 0.4 / 0.3,
mamba 0.11 / 0.12 / left out (> 20 s). Streaming cost at 10,000 over 10 steps of context:
0.92-1.01 for every layer (transformer: bounded by its 64-step window); with window = context
the transformer's step grows 6.1x (0.42 to 2.56 ms). Peak fwd+bwd memory at T=784: nn.GRU 159
MiB, mingru 135, s5 98, lru 184, mamba 365, mlstm 346, transformer 323.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from rnnvision_kit.nn.heads import create_layer  # noqa: E402

LAYERS = (
    "gru",
    "lstm",
    "rnn",
    "mingru",
    "minlstm",
    "lru",
    "s5",
    "mamba",
    "mlstm",
    "transformer",
    "tcn",
)
REFERENCE = "nn.GRU"
State = tuple[Tensor, ...]


# ------------------------------------------------------------------------------- building


def build_layers(names: Sequence[str], H: int, chunk: int | None) -> dict[str, nn.Module]:
    """The layers by name (``create_layer(name, H, H)``); one that cannot be built is skipped
    with a printed note (``mamba``/``mlstm`` while they are being written)."""
    layers: dict[str, nn.Module] = {}
    for name in names:
        settings: dict[str, Any] = {}
        if chunk is not None:
            settings["chunk"] = chunk
        try:
            try:
                layers[name] = create_layer(name, H, H, **settings)
            except TypeError:  # a layer without a chunk setting
                layers[name] = create_layer(name, H, H)
        except Exception as error:  # noqa: BLE001 - any failure: skip the layer, say why
            print(f"note: {name} skipped ({type(error).__name__}: {error})", flush=True)
    return layers


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def state_bytes(layer: nn.Module) -> int:
    """Bytes of one sample's streaming state (from ``state_spec``; float32 parameters)."""
    return sum(t.numel() * t.element_size() for t in layer.initial_state(1))


# -------------------------------------------------------------------------------- timing


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def train_step(model: nn.Module, x: Tensor) -> Callable[[], None]:
    def run() -> None:
        out = model(x)
        y = out[0] if isinstance(out, tuple) else out
        model.zero_grad(set_to_none=True)
        y.square().mean().backward()

    return run


def step_loop(layer: nn.Module, x: Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            state = layer.initial_state(x.shape[0])
            for t in range(x.shape[1]):
                _, state = layer.step(x[:, t], state)

    return run


def parallel(layer: nn.Module, x: Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            layer(x)

    return run


def bench(
    variants: dict[str, Callable[[], None]], reps: int, device: str, max_seconds: float
) -> tuple[dict[str, float], list[str]]:
    """Median ms of each variant over ``reps`` interleaved rounds after a warm-up round; also
    the variants whose warm-up took longer than ``max_seconds`` (left out of the rounds)."""
    slow = []
    for name, fn in variants.items():
        if timed(fn, device) > max_seconds:
            slow.append(name)
    kept = {name: fn for name, fn in variants.items() if name not in slow}
    times: dict[str, list[float]] = {name: [] for name in kept}
    for _ in range(reps):
        for name, fn in kept.items():
            times[name].append(timed(fn, device))
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}, slow


# -------------------------------------------------------------------------------- memory


def peak_memory(fn: Callable[[], None], device: str) -> int | None:
    """Peak bytes allocated by torch during ``fn`` beyond what was allocated before it (see the
    module docstring), or None when the profiler's allocation events are unavailable."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    try:
        roots = prof.profiler.kineto_results.experimental_event_tree()
    except AttributeError:
        return None
    events: list[tuple[int, int]] = []
    pending = list(roots)
    while pending:
        node = pending.pop()
        fields = node.extra_fields
        if type(fields).__name__ == "_ExtraFields_Allocation" and str(fields.device) == "cpu":
            events.append((node.start_time_ns, fields.alloc_size))
        pending.extend(node.children)
    events.sort()
    live = peak = 0
    for _, size in events:
        live += size
        peak = max(peak, live)
    return peak


# ----------------------------------------------------------------------------- streaming


def stream_states(
    layer: nn.Module, contexts: Sequence[int], x: Tensor
) -> tuple[dict[int, State], float]:
    """The state after each of ``contexts`` steps (stepping through ``x: 1,T,F`` from
    ``initial_state``) and the mean ms per step of that walk."""
    keep: dict[int, State] = {}
    state = layer.initial_state(1)
    wanted = set(contexts)
    start = time.perf_counter()
    with torch.no_grad():
        for t in range(max(contexts)):
            _, state = layer.step(x[:, t], state)
            if t + 1 in wanted:
                keep[t + 1] = tuple(s.clone() for s in state)
    return keep, (time.perf_counter() - start) * 1e3 / max(contexts)


def stream_costs(
    cases: dict[str, dict[int, tuple[nn.Module, State]]],
    x_t: Tensor,
    rounds: int,
    device: str,
    burst: int = 4,
) -> dict[str, dict[int, float]]:
    """Median ms of one ``step`` from each kept state. A sample is the mean of ``burst`` steps
    from the state, timed together after one untimed step (so every layer is timed warm); the
    samples go round-robin, contexts outer and rows inner, for ``rounds`` rounds (so a noisy
    moment, or the switch from another layer, hurts all contexts alike)."""
    contexts = sorted({c for by_context in cases.values() for c in by_context})
    times: dict[tuple[str, int], list[float]] = {
        (row, c): [] for row, by_context in cases.items() for c in by_context
    }

    def steps(layer: nn.Module, state: State) -> None:
        for _ in range(burst):
            layer.step(x_t, state)

    with torch.no_grad():
        for r in range(rounds):
            order = contexts[r % len(contexts) :] + contexts[: r % len(contexts)]
            for c in order:
                for row, by_context in cases.items():
                    layer, state = by_context[c]
                    layer.step(x_t, state)
                    elapsed = timed(lambda: steps(layer, state), device)  # noqa: B023
                    times[row, c].append(elapsed / burst)
    out: dict[str, dict[int, float]] = {row: {} for row in cases}
    for (row, c), samples in times.items():
        out[row][c] = statistics.median(samples) * 1e3
    return out


def streaming(
    layers: dict[str, nn.Module],
    contexts: Sequence[int],
    rounds: int,
    device: str,
    transformer_rows: bool,
) -> tuple[dict[str, dict[int, float]], dict[str, float], dict[str, int]]:
    """Per-step cost at each context for every layer (and the two extra transformer rows):
    ``{row: {context: ms}}``, the walks' mean ms per step and the state bytes."""
    H = next(iter(layers.values())).input_size
    x = torch.randn(1, max(contexts), H, device=device)
    cases: dict[str, dict[int, tuple[nn.Module, State]]] = {}
    walk: dict[str, float] = {}
    sizes: dict[str, int] = {}
    rows: dict[str, nn.Module] = {name: layer.eval() for name, layer in layers.items()}
    base = layers.get("transformer")
    if transformer_rows and base is not None:
        rows[f"transformer w={max(contexts)}"] = _with_window(base, max(contexts))
    for row, layer in rows.items():
        states, walk[row] = stream_states(layer, contexts, x)
        cases[row] = {c: (layer, states[c]) for c in contexts}
        sizes[row] = state_bytes(layer)
        print(f"  streamed {row}: {walk[row]:.3f} ms/step over {max(contexts)} steps", flush=True)
    if transformer_rows and base is not None:
        row = "transformer w=context"
        cases[row] = {}
        for c in contexts:
            layer = _with_window(base, c)
            states, _ = stream_states(layer, [c], x)
            cases[row][c] = (layer, states[c])
        sizes[row] = state_bytes(_with_window(base, max(contexts)))
    return stream_costs(cases, x[:, 0], rounds, device), walk, sizes


def _with_window(transformer: nn.Module, window: int) -> nn.Module:
    """The same transformer (same weights) with another window."""
    copied = copy.deepcopy(transformer)
    copied.window = window
    return copied.eval()


# ------------------------------------------------------------------------------- tables


def markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


# --------------------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", "--T", dest="lengths", default=None, help="64,784,4096")
    parser.add_argument("--layers", default=",".join(LAYERS), help="comma-separated names")
    parser.add_argument("--B", type=int, default=32)
    parser.add_argument("--H", type=int, default=128)
    parser.add_argument("--repeats", "--reps", dest="repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=None, help="scan chunk (default: auto)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--contexts", default=None, help="10,100,1000,10000")
    parser.add_argument("--stream-rounds", type=int, default=None, help="100")
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--no-step", action="store_true", help="skip parallel vs step loop")
    parser.add_argument("--no-stream", action="store_true", help="skip streaming cost")
    parser.add_argument("--no-memory", action="store_true", help="skip peak memory")
    parser.add_argument("--quick", action="store_true", help="T=64, 2 repeats, short streams")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    defaults = (
        ("64", 2, "10,100", 5) if args.quick else ("64,784,4096", 5, "10,100,1000,10000", 100)
    )
    for key, value in zip(
        ("lengths", "repeats", "contexts", "stream_rounds"), defaults, strict=True
    ):
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.manual_seed(0)
    device, H, B = args.device, args.H, args.B
    lengths = [int(t) for t in args.lengths.split(",")]
    contexts = sorted(int(c) for c in args.contexts.split(","))
    layers = build_layers([n.strip() for n in args.layers.split(",") if n.strip()], H, args.chunk)
    reference = nn.GRU(H, H, batch_first=True)
    for module in (reference, *layers.values()):
        module.to(device)
    print(
        f"device={device} threads={torch.get_num_threads()} B={B} H={H} repeats={args.repeats} "
        f"torch={torch.__version__}",
        flush=True,
    )
    train: dict[int, dict[str, float]] = {}
    forward: dict[int, dict[str, float]] = {}
    memory: dict[int, dict[str, int | None]] = {}
    notes: list[str] = []
    too_slow: set[str] = set()
    step_slow: set[str] = set()
    for T in lengths:
        x = torch.randn(B, T, H, device=device)
        models = {REFERENCE: reference, **{n: m for n, m in layers.items() if n not in too_slow}}
        for model in models.values():
            model.train()
        train[T], slow = bench(
            {n: train_step(m, x) for n, m in models.items()}, args.repeats, device, args.max_seconds
        )
        for name in slow:
            too_slow.add(name)
            notes.append(f"{name}: fwd+bwd at T={T} took > {args.max_seconds:g} s; left out")
        print(
            f"T={T} train ms: " + ", ".join(f"{n} {v:.1f}" for n, v in train[T].items()),
            flush=True,
        )
        if not args.no_memory:
            memory[T] = {n: peak_memory(train_step(m, x), device) for n, m in models.items()}
            print(f"T={T} memory done", flush=True)
        if not args.no_step:
            variants: dict[str, Callable[[], None]] = {}
            for name, layer in layers.items():
                if name not in step_slow:
                    layer.eval()
                    variants[f"{name} parallel"] = parallel(layer, x)
                    variants[f"{name} step"] = step_loop(layer, x)
            forward[T], slow = bench(variants, max(1, args.repeats // 2), device, args.max_seconds)
            for variant in slow:
                name = variant.rsplit(" ", 1)[0]
                step_slow.add(name)
                notes.append(f"{variant} at T={T} took > {args.max_seconds:g} s; left out")
            print(f"T={T} parallel vs step done", flush=True)
        del x
    stream: dict[str, dict[int, float]] = {}
    walk: dict[str, float] = {}
    sizes: dict[str, int] = {}
    if not args.no_stream:
        stream, walk, sizes = streaming(
            layers, contexts, args.stream_rounds, device, transformer_rows=True
        )
    params = {REFERENCE: n_params(reference), **{n: n_params(m) for n, m in layers.items()}}
    report(
        args, layers, params, lengths, contexts, train, forward, memory, stream, walk, sizes, notes
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "settings": {k: str(v) for k, v in vars(args).items()},
                    "params": params,
                    "train_ms": train,
                    "forward_ms": forward,
                    "memory_bytes": memory,
                    "stream_ms": stream,
                    "walk_ms_per_step": walk,
                    "state_bytes": sizes,
                    "notes": notes,
                },
                indent=2,
            )
        )
    return 0


def report(
    args: argparse.Namespace,
    layers: dict[str, nn.Module],
    params: dict[str, int],
    lengths: list[int],
    contexts: list[int],
    train: dict[int, dict[str, float]],
    forward: dict[int, dict[str, float]],
    memory: dict[int, dict[str, int | None]],
    stream: dict[str, dict[int, float]],
    walk: dict[str, float],
    sizes: dict[str, int],
    notes: list[str],
) -> None:
    """Print the Markdown tables."""
    names = [REFERENCE, *layers]
    print(f"\n### Training, forward + backward, B={args.B}, H={args.H} (ms; x GRU: > 1 faster)\n")
    header = ["layer", "params"]
    for T in lengths:
        header += [f"T={T} ms", "x GRU"]
    rows = []
    for name in names:
        row: list[object] = [name, params[name]]
        for T in lengths:
            ms = train[T].get(name)
            gru = train[T].get(REFERENCE)
            row += [fmt(ms), fmt(gru / ms, 2) if ms and gru else "-"]
        rows.append(row)
    print(markdown(header, rows))
    if forward:
        print(f"\n### Forward, no grad, B={args.B}: parallel mode vs step loop (ms; x: step/par)\n")
        header = ["layer"]
        for T in forward:
            header += [f"T={T} parallel", "step", "x"]
        rows = []
        for name in layers:
            row = [name]
            for T in forward:
                p, s = forward[T].get(f"{name} parallel"), forward[T].get(f"{name} step")
                row += [fmt(p), fmt(s), fmt(s / p, 1) if p and s else "-"]
            rows.append(row)
        print(markdown(header, rows))
    if memory:
        how = (
            "torch.cuda.max_memory_allocated"
            if args.device.startswith("cuda")
            else ("torch.profiler allocation events")
        )
        print(f"\n### Peak training memory, one forward + backward, B={args.B} (MiB; {how})\n")
        header = ["layer", *(f"T={T}" for T in memory)]
        rows = [[name, *(mib(memory[T].get(name)) for T in memory)] for name in names]
        print(markdown(header, rows))
    if stream:
        first, last = contexts[0], contexts[-1]
        print("\n### Streaming, B=1: ms per step at a context of N steps (median)\n")
        header = ["layer", "state bytes", *(f"N={c}" for c in contexts), f"{last}/{first}"]
        header.append(f"walk ms/step (0..{last})")
        rows = []
        for row_name, costs in stream.items():
            ratio = costs[last] / costs[first]
            rows.append(
                [
                    row_name,
                    sizes.get(row_name, "-"),
                    *(fmt(costs[c], 3) for c in contexts),
                    fmt(ratio, 2),
                    fmt(walk.get(row_name), 3),
                ]
            )
        print(markdown(header, rows))
        print(
            "\n`transformer w=context`: a cache of N slots at context N (an unbounded KV cache); "
            f"its state bytes are those at N={last}."
        )
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    raise SystemExit(main())
