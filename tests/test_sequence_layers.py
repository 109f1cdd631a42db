"""The sequence-layer contract, the chunked linear scan and minGRU/minLSTM: parallel == step loop ==
chunked scan with a carried state (1e-9 in float64, 1e-5 in float32), saturated gates, gradients
against a sequential reference."""

from __future__ import annotations

import pytest
import torch

from rnnvision_kit.nn import (
    MinGRU,
    MinLSTM,
    SequenceLayer,
    StateSpec,
    linear_scan,
    sequential_scan,
)
from rnnvision_kit.nn.layers_min import _log_sigmoid, _MinLSTMCoefficients, min_g
from rnnvision_kit.nn.scan import default_chunk
from tests.layer_checks import (  # noqa: F401 (one_thread: an autouse fixture)
    assert_close,
    one_thread,
    scan_in_chunks,
    step_loop,
)

LAYERS = [MinGRU, MinLSTM]


def gates(batch: int, length: int, dim: int, dtype: torch.dtype, seed: int = 0):
    """Random gates in (0, 1] with saturated values mixed in: 1e-30, exactly 0 and exactly 1,
    in runs longer than a chunk (where a scan dividing by cumulative products overflows)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(batch, length, dim, generator=g, dtype=dtype)
    b = torch.randn(batch, length, dim, generator=g, dtype=dtype) * 3
    h0 = torch.randn(batch, dim, generator=g, dtype=dtype)
    a[0, ::2, 0] = 1e-30
    a[0, :, 1] = 1e-30
    a[-1, :, 0] = 1.0
    a[-1, 3::5, 1] = 0.0
    if dim > 2:
        a[:, :, 2] = 1.0 - 1e-7
    return a, b, h0


# ------------------------------------------------------------------ the scan


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("length", "chunk"), [(1, None), (3, 2), (17, 4), (17, None), (64, 8), (100, 7), (150, 64)]
)
def test_scan_matches_sequential_loop(dtype, length, chunk):
    a, b, h0 = gates(3, length, 4, dtype)
    expected = sequential_scan(a, b, h0)
    assert_close(linear_scan(a, b, h0, chunk=chunk), expected, dtype)
    assert_close(linear_scan(a, b, chunk=chunk), sequential_scan(a, b), dtype)


def test_scan_saturated_gates_stay_finite_in_float32():
    # 64 steps of a = 1e-30 in one chunk: prod(a) underflows; 1/prod(a) would overflow to inf.
    a = torch.full((2, 130, 3), 1e-30)
    a[1] = 1.0  # never forgets: h_t = h0 + sum(b)
    b = torch.ones(2, 130, 3)
    h0 = torch.full((2, 3), 5.0)
    h = linear_scan(a, b, h0, chunk=64)
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h[0], torch.ones(130, 3))
    torch.testing.assert_close(h[1, :, 0], 5.0 + torch.arange(1, 131, dtype=torch.float32))


@pytest.mark.parametrize("chunk", [1, 4, 5, 32])
def test_scan_chunked_with_carried_state(chunk):
    dtype = torch.float64
    a, b, h0 = gates(2, 23, 3, dtype, seed=1)
    whole = linear_scan(a, b, h0, chunk=chunk)
    h, parts = h0, []
    for lo, hi in [(0, 5), (5, 6), (6, 17), (17, 23)]:
        part = linear_scan(a[:, lo:hi], b[:, lo:hi], h, chunk=chunk)
        parts.append(part)
        h = part[:, -1]
    assert_close(torch.cat(parts, 1), whole, dtype)
    assert_close(whole, sequential_scan(a, b, h0), dtype)


@pytest.mark.parametrize(("length", "chunk"), [(1, None), (17, 4), (33, 8), (12, 5)])
def test_scan_gradients_match_sequential_loop(length, chunk):
    dtype = torch.float64
    a, b, h0 = gates(2, length, 3, dtype, seed=2)
    weight = torch.randn(2, length, 3, dtype=dtype)
    grads = []
    for fn in (lambda *t: linear_scan(*t, chunk=chunk), sequential_scan):
        leaves = [t.clone().requires_grad_() for t in (a, b, h0)]
        (fn(*leaves) * weight).sum().backward()
        grads.append([leaf.grad for leaf in leaves])
    for got, expected in zip(*grads, strict=True):
        assert_close(got, expected, dtype)


def test_scan_gradcheck():
    dtype = torch.float64
    a, b, h0 = gates(2, 11, 3, dtype, seed=3)
    a = a.clamp(min=0.05)  # finite differences need gates away from 0
    leaves = [t.clone().requires_grad_() for t in (a, b, h0)]
    assert torch.autograd.gradcheck(lambda *t: linear_scan(*t, chunk=4), leaves)


def test_scan_complex_gates_match_loop_and_gradients():
    g = torch.Generator().manual_seed(4)
    shape = (2, 13, 3)
    a = torch.polar(
        torch.rand(shape, generator=g, dtype=torch.float64),
        torch.randn(shape, generator=g, dtype=torch.float64),
    )
    b = torch.randn(shape, generator=g, dtype=torch.complex128)
    h0 = torch.randn(2, 3, generator=g, dtype=torch.complex128)
    assert_close(linear_scan(a, b, h0, chunk=4), sequential_scan(a, b, h0), torch.float64)
    leaves = [t.clone().requires_grad_() for t in (a, b, h0)]
    assert torch.autograd.gradcheck(lambda *t: linear_scan(*t, chunk=4), leaves)


def test_default_chunk():
    assert default_chunk(1) == 1
    assert [default_chunk(t) for t in (17, 64, 784, 4096, 10**6)] == [8, 8, 16, 32, 64]


# ------------------------------------------------------------------ the layers


def make(layer_cls, dtype, **kwargs):
    torch.manual_seed(0)
    return layer_cls(5, 6, **kwargs).to(dtype).eval()


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("length", [1, 3, 17])
@pytest.mark.parametrize("expansion", [1.0, 1.5])
def test_parallel_equals_step_loop_and_chunked_scan(layer_cls, dtype, length, expansion):
    layer = make(layer_cls, dtype, expansion=expansion, chunk=4)
    x = torch.randn(3, length, 5, dtype=dtype) * 4  # large inputs: gates near saturation
    with torch.no_grad():
        parallel = layer(x)
        assert parallel.shape == (3, length, 6)
        steps, state = step_loop(layer, x)
        assert_close(steps, parallel, dtype)
        chunks, state = scan_in_chunks(layer, x)  # 5 steps: not a multiple of the chunk 4
        assert_close(chunks, parallel, dtype)
        for final in (state[0], layer.step(x[:, -1], layer.scan(x[:, :-1])[1])[1][0]):
            assert_close(final, layer.scan(x)[1][0], dtype)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_parallel_gradients_match_step_loop(layer_cls):
    dtype = torch.float64
    layer = make(layer_cls, dtype, expansion=1.5, chunk=4)
    x = torch.randn(2, 17, 5, dtype=dtype) * 3
    weight = torch.randn(2, 17, 6, dtype=dtype)
    grads = []
    for mode in ("parallel", "steps"):
        layer.zero_grad()
        xi = x.clone().requires_grad_()
        if mode == "parallel":
            y = layer(xi)
        else:
            state, ys = None, []
            for t in range(x.shape[1]):
                out, state = layer.step(xi[:, t], state)
                ys.append(out)
            y = torch.stack(ys, 1)
        (y * weight).sum().backward()
        grads.append([xi.grad] + [p.grad.clone() for p in layer.parameters()])
    for got, expected in zip(*grads, strict=True):
        assert_close(got, expected, dtype)


def reference_coefficients(layer_cls, parts):
    """The paper's formulas through plain autograd (the layers use a hand-written backward)."""
    if layer_cls is MinGRU:
        k, pre = parts
        z = torch.sigmoid(k)
        return 1 - z, z * min_g(pre)
    kf, ki, pre = parts
    f, i = torch.sigmoid(kf), torch.sigmoid(ki)
    return f / (f + i), i / (f + i) * min_g(pre)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_coefficients_and_their_gradients_match_the_paper(layer_cls):
    dtype = torch.float64
    layer = make(layer_cls, dtype)
    x = torch.randn(2, 9, 5, dtype=dtype) * 3
    weights = torch.randn(2, 2, 9, 6, dtype=dtype)
    grads = []
    for fn in (layer.coefficients, None):
        layer.zero_grad()
        xi = x.clone().requires_grad_()
        if fn is None:
            parts = layer.gates(xi).chunk(layer._gate_chunks, dim=-1)
            a, b = reference_coefficients(layer_cls, parts)
        else:
            a, b = fn(xi)
        ((a * weights[0]).sum() + (b * weights[1]).sum()).backward()
        grads.append([a.detach(), b.detach(), xi.grad] + [p.grad for p in layer.parameters()])
    for got, expected in zip(*grads, strict=True):
        assert_close(got, expected, dtype)
    xi = x[:, :3].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: layer.coefficients(t), (xi,))


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_state_spec_matches_initial_state(layer_cls):
    layer = layer_cls(4, 8, expansion=2.0)
    spec = layer.state_spec()
    assert all(isinstance(s, StateSpec) for s in spec)
    assert [s.name for s in spec] == ["h"]
    state = layer.initial_state(3)
    assert isinstance(state, tuple) and len(state) == len(spec)
    for s, tensor in zip(spec, state, strict=True):
        assert tensor.shape == (3, *s.shape) == (3, 16)
        assert tensor.dtype == torch.float32 and not tensor.any()
    y, next_state = layer.step(torch.randn(3, 4), state)
    assert y.shape == (3, 8)
    assert [t.shape for t in next_state] == [t.shape for t in state]
    assert layer.initial_state(2, dtype=torch.float64)[0].dtype == torch.float64
    assert layer.causal and layer.stream_blocker is None


def test_log_sigmoid_matches_torch_at_extremes():
    for dtype in (torch.float64, torch.float32):
        k = torch.tensor(
            [-1e4, -800.0, -90.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 90.0, 1e4], dtype=dtype
        )
        k = torch.cat([k, torch.randn(100, dtype=dtype) * 10])
        assert_close(_log_sigmoid(k), torch.nn.functional.logsigmoid(k), dtype)


def test_min_lstm_gates_when_both_saturate():
    # f = i = sigmoid(-1e4) underflow to 0: f / (f + i) would be 0/0; the paper's f' is 1/2
    u = torch.full((1, 1, 18), -1e4)
    u[..., 6:12] = -1e4 - 1.0  # ki one lower: f' = sigmoid(1) exactly as for small gates
    a, b = _MinLSTMCoefficients.apply(u)
    torch.testing.assert_close(a, torch.full_like(a, torch.sigmoid(torch.tensor(1.0)).item()))
    assert torch.isfinite(b).all()


def test_saturated_layer_inputs_stay_finite():
    for layer_cls in LAYERS:
        layer = make(layer_cls, torch.float32)
        x = torch.randn(2, 40, 5) * 1e4  # gates saturate to exactly 0 or 1
        y = layer(x)
        assert torch.isfinite(y).all()
        y.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_non_causal_layer_cannot_stream():
    class Reverse(SequenceLayer):
        causal = False

        def __init__(self):
            super().__init__()
            self.input_size = self.hidden_size = 2

        def forward(self, x):
            return x.flip(1)

        def state_spec(self):
            return ()

    layer = Reverse()
    assert layer.stream_blocker and "not causal" in layer.stream_blocker
    with pytest.raises(ValueError, match="cannot stream"):
        layer.step(torch.zeros(1, 2))
    assert layer.initial_state(2) == ()
