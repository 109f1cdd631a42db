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
