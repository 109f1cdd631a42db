"""Shared checks of the sequence-layer tests: tolerances, one torch thread, closeness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

# Relative tolerance; the absolute one is scaled by the largest magnitude, since with a = 1 the
# state is a long sum whose terms cancel (float32 rounding is relative to the terms, not the sum).
TOL = {torch.float64: 1e-9, torch.float32: 1e-5}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small tensors: one thread (the default count is slower on a shared 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    """Finite, and equal within :data:`TOL` (absolute tolerance scaled by the largest value)."""
    assert torch.isfinite(actual).all()
    tol = TOL[dtype]
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol * scale)


def step_loop(layer, x: torch.Tensor, state=None) -> tuple[torch.Tensor, tuple]:
    """The sequential reference: ``layer.step`` one step at a time; ``(y B,T,H, last state)``."""
    ys = []
    for t in range(x.shape[1]):
        y, state = layer.step(x[:, t], state)
        ys.append(y)
    return torch.stack(ys, 1), state


def scan_in_chunks(layer, x: torch.Tensor, state=None, sizes=(5,)) -> tuple[torch.Tensor, tuple]:
    """``layer.scan`` over consecutive chunks of ``sizes`` steps (cycled), the state carried;
    ``(y B,T,H, last state)``."""
    ys, lo, i = [], 0, 0
    while lo < x.shape[1]:
        hi = lo + sizes[i % len(sizes)]
        y, state = layer.scan(x[:, lo:hi], state)
        ys.append(y)
        lo, i = hi, i + 1
    return torch.cat(ys, 1), state


class _ChunkModule(torch.nn.Module):
    """``(x B,T,F, *state) -> (y B,T,H, *next_state)``: a layer's ``scan``, for export."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, next_state = self.layer.scan(x, tuple(state))
        return (y, *next_state)


def check_onnx_chunks(layer: torch.nn.Module, tmp_path, tolerance: float = 1e-4) -> dict:
    """Export ``layer.scan`` to ONNX (the runner's exporter, traced at T=2) with the state as
    explicit inputs/outputs, and check onnxruntime against the layer's own ``step`` loop at
    T = 1, 3 and 17 from a random non-zero state; returns ``{T: largest difference}``."""
    from rnnvision_kit.runner.export import check_onnx, export_onnx
    from rnnvision_kit.task import Exportable

    layer = layer.eval().float()
    specs = layer.state_spec()
    names = [f"state_{spec.name}" for spec in specs]
    outs = [f"{name}_out" for name in names]

    def sample(n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        x = torch.randn(2, n, layer.input_size, generator=generator)
        state = []
        for zero in layer.initial_state(2):
            if zero.dtype.is_floating_point:
                state.append(torch.rand(zero.shape, generator=generator) * 1.8 - 0.9)
            else:
                state.append(zero + n)
        return (x, *state)

    def reference(x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        ys, carried = [], tuple(state)
        for t in range(x.shape[1]):
            y, carried = layer.step(x[:, t], carried)
            ys.append(y)
        return (torch.stack(ys, 1), *carried)

    axes = {name: {0: "batch"} for name in names + outs}
    exportable = Exportable(
        module=_ChunkModule(layer),
        inputs=("x", *names),
        outputs=("y", *outs),
        sample=sample,
        dynamic_axes={"x": {0: "batch", 1: "time"}, "y": {0: "batch", 1: "time"}, **axes},
        states=dict(zip(names, outs, strict=True)),
        reference=reference,
    )
    path = tmp_path / "layer.onnx"
    export_onnx(exportable, path)
    return check_onnx(exportable, path, tolerance)[1]
