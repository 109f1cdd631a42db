"""LRU and S5: parallel == step loop == chunked scan with a carried state (1e-9 in float64, 1e-5
in float32), gradients against a plain-autograd sequential reference, initialisation bounds, the
state description and the non-finite check."""

from __future__ import annotations

import math

import pytest
import torch

from rnnvision_kit.errors import RnnkitError
from rnnvision_kit.nn import LRU, S5, StateSpec, sequential_scan
from rnnvision_kit.nn.layers_ssm import hippo_eigenvalues
from tests.layer_checks import (  # noqa: F401 (one_thread: an autouse fixture)
    assert_close,
    one_thread,
    scan_in_chunks,
    step_loop,
)

LAYERS = [LRU, S5]


def make(layer_cls, dtype, input_size=5, hidden=6, **kwargs):
    torch.manual_seed(0)
    if layer_cls is LRU:
        kwargs.setdefault("r_min", 0.9)
        kwargs.setdefault("r_max", 0.999)  # long memory: states carry across chunks
    else:
        kwargs.setdefault("dt_min", 0.01)
        kwargs.setdefault("dt_max", 0.5)
    return layer_cls(input_size, hidden, chunk=4, **kwargs).to(dtype).eval()


def reference(layer, x, state=None):
    """The paper's recurrence, written out: complex ``h_t = lambda h_{t-1} + Bbar u_t`` one
    step at a time (plain autograd), ``y = scale * Re(C h) + D u``."""
    u = layer.proj(x)
    lam, bbar = layer.discrete()
    b = torch.einsum("nh,bth->btn", bbar, u.to(bbar.dtype))
    h0 = None if state is None else torch.complex(*state)
    h = sequential_scan(lam.expand_as(b), b, h0)
    c = torch.complex(layer.C_re, layer.C_im)
    y = layer.out_scale * torch.einsum("hn,btn->bth", c, h).real + layer.D * u
    return y, h[:, -1]


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("length", "input_size"), [(1, 5), (3, 6), (17, 5), (41, 6)])
def test_parallel_equals_step_loop_and_chunked_scan(layer_cls, dtype, length, input_size):
    # chunk=4: T=17 and T=41 span several chunks (41: 10 chunks plus a padded one)
    layer = make(layer_cls, dtype, input_size=input_size)
    x = torch.randn(3, length, input_size, dtype=dtype) * 2
    with torch.no_grad():
        parallel = layer(x)
        assert parallel.shape == (3, length, 6) and parallel.dtype == dtype
        expected, last = reference(layer, x)
        assert_close(parallel, expected, dtype)
        steps, state = step_loop(layer, x)
        assert_close(steps, parallel, dtype)
        assert_close(torch.complex(*state), last, dtype)
        chunks, state = scan_in_chunks(layer, x)  # 5 steps: not a multiple of the chunk 4
        assert_close(chunks, parallel, dtype)
        assert_close(torch.complex(*state), last, dtype)
        assert all(t.dtype == dtype for t in state)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_default_chunk_long_sequence_with_carried_state(layer_cls):
    # T=300 > the default chunk (8 at this length) many times over, starting from a random state
    dtype = torch.float64
    torch.manual_seed(1)
    settings = {"r_min": 0.99, "r_max": 0.999} if layer_cls is LRU else {}
    layer = layer_cls(4, 6, **settings).to(dtype)
    x = torch.randn(2, 300, 4, dtype=dtype)
    state = tuple(torch.randn(2, *s.shape, dtype=dtype) for s in layer.state_spec())
    with torch.no_grad():
        y, (re, im) = layer.scan(x, state)
        expected, last = reference(layer, x, state)
        assert_close(y, expected, dtype)
        assert_close(torch.complex(re, im), last, dtype)
        y1, s1 = layer.scan(x[:, :123], state)
        y2, s2 = layer.scan(x[:, 123:], s1)
        assert_close(torch.cat([y1, y2], 1), y, dtype)
        assert_close(torch.complex(*s2), last, dtype)


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("input_size", [5, 6])
def test_parallel_gradients_match_sequential_reference(layer_cls, input_size):
    dtype = torch.float64
    layer = make(layer_cls, dtype, input_size=input_size)
    x = torch.randn(2, 17, input_size, dtype=dtype)
    state = tuple(torch.randn(2, *s.shape, dtype=dtype) for s in layer.state_spec())
    weight = torch.randn(2, 17, 6, dtype=dtype)
    wstate = torch.randn(2, 2, layer.modes, dtype=dtype)
    grads = []
    for mode in ("parallel", "reference", "steps"):
        layer.zero_grad()
        xi = x.clone().requires_grad_()
        si = tuple(s.clone().requires_grad_() for s in state)
        if mode == "parallel":
            y, (re, im) = layer.scan(xi, si)
        elif mode == "reference":
            y, last = reference(layer, xi, si)
            re, im = last.real, last.imag
        else:
            ys, st = [], si
            for t in range(x.shape[1]):
                out, st = layer.step(xi[:, t], st)
                ys.append(out)
            y, (re, im) = torch.stack(ys, 1), st
        loss = (y * weight).sum() + (re * wstate[0]).sum() + (im * wstate[1]).sum()
        loss.backward()
        grads.append([xi.grad, *(s.grad for s in si)] + [p.grad for p in layer.parameters()])
    assert len(grads[0]) == 3 + len(list(layer.parameters()))
    for got, ref, steps in zip(*grads, strict=True):
        assert ref is not None and ref.abs().sum() > 0
        assert_close(got, ref, dtype)
        assert_close(steps, ref, dtype)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_gradcheck_small(layer_cls):
    layer = make(layer_cls, torch.float64, input_size=3, hidden=2, state_size=4)
    x = torch.randn(1, 6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layer(t), (x,))


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize(("hidden", "state_size"), [(8, None), (8, 6)])
def test_state_spec_matches_initial_state(layer_cls, hidden, state_size):
    layer = layer_cls(4, hidden, state_size=state_size)
    expected = state_size or hidden
    if layer_cls is S5:
        expected //= 2  # conjugate symmetry: P/2 complex modes
    spec = layer.state_spec()
    assert all(isinstance(s, StateSpec) for s in spec)
    assert [(s.name, s.shape, s.dtype) for s in spec] == [
        ("h_re", (expected,), "param"),
        ("h_im", (expected,), "param"),
    ]
    state = layer.initial_state(3)
    assert len(state) == len(spec)
    for s, tensor in zip(spec, state, strict=True):
        assert tensor.shape == (3, *s.shape)
        assert tensor.dtype == torch.float32 and not tensor.is_complex() and not tensor.any()
    y, next_state = layer.step(torch.randn(3, 4), state)
    assert y.shape == (3, hidden) and y.dtype == torch.float32
    assert [(t.shape, t.dtype) for t in next_state] == [(t.shape, t.dtype) for t in state]
    assert all(t.is_contiguous() for t in next_state)
    y, next_state = layer.scan(torch.randn(3, 0, 4))
    assert y.shape == (3, 0, hidden) and len(next_state) == 2
    assert layer.initial_state(2, dtype=torch.float64)[0].dtype == torch.float64
    assert layer.causal and layer.stream_blocker is None


@pytest.mark.parametrize(("r_min", "r_max", "max_phase"), [(0.0, 1e-3, 0.1), (0.4, 0.99, 6.28)])
def test_lru_ring_initialisation(r_min, r_max, max_phase):
    torch.manual_seed(2)
    layer = LRU(8, 8, state_size=4000, r_min=r_min, r_max=r_max, max_phase=max_phase)
    lam = layer.eigenvalues()
    radius, phase = lam.abs(), lam.angle() % (2 * math.pi)
    assert (radius < 1).all()
    assert radius.min() >= r_min - 1e-6 and radius.max() <= r_max + 1e-6
    assert phase.max() <= max_phase + 1e-5
    # uniform in area on the ring: half the mass below the radius splitting the area in two
    median = math.sqrt((r_min**2 + r_max**2) / 2)
    assert abs((radius < median).float().mean().item() - 0.5) < 0.05
    assert phase.max() > 0.95 * max_phase and radius.max() > r_max - 0.05 * (r_max - r_min)
    gamma = torch.exp(layer.gamma_log)
    torch.testing.assert_close(gamma, torch.sqrt(1 - radius**2), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="r_min"):
        LRU(4, 4, r_min=0.9, r_max=0.5)


def test_s5_discretisation_and_initialisation():
    torch.manual_seed(3)
    layer = S5(4, 8, state_size=16, dt_min=0.01, dt_max=0.1).double()
    dt = torch.exp(layer.log_dt)
    assert dt.min() >= 0.01 - 1e-9 and dt.max() <= 0.1 + 1e-9
    Lambda = torch.complex(-torch.exp(layer.log_neg_re), layer.im)
    torch.testing.assert_close(Lambda, hippo_eigenvalues(16)[8:], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(Lambda.real, torch.full_like(Lambda.real, -0.5))
    assert (Lambda.imag > 0).all()
    lam, bbar = layer.discrete()
    torch.testing.assert_close(lam, torch.exp(Lambda * dt))  # zero-order hold
    b = torch.complex(layer.B_re, layer.B_im)
    torch.testing.assert_close(bbar, ((lam - 1) / Lambda)[:, None] * b)
    assert (lam.abs() < 1).all()
    lin = S5(4, 8, state_size=8, init="lin")
    torch.testing.assert_close(lin.im, math.pi * torch.arange(4.0))
    # HiPPO-N: -1/2 + i w with w in +- pairs
    eig = hippo_eigenvalues(10)
    torch.testing.assert_close(eig.imag, -eig.imag.flip(0))
    with pytest.raises(ValueError, match="even"):
        S5(4, 4, state_size=5)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_non_finite_scan_raises_one_line(layer_cls):
    layer = make(layer_cls, torch.float32)
    with torch.no_grad():
        next(p for n, p in layer.named_parameters() if n == "B_re")[0, 0] = float("nan")
    x = torch.randn(2, 9, 5)
    for run in (lambda: layer(x), lambda: layer.step(x[:, 0])):
        with pytest.raises(RnnkitError, match=layer_cls.__name__) as info:
            run()
        assert "\n" not in str(info.value) and "non-finite" in str(info.value)


def test_float32_large_input_stays_finite_and_trains():
    for layer_cls in LAYERS:
        layer = layer_cls(5, 8)
        x = torch.randn(4, 200, 5) * 100
        y = layer(x)
        assert torch.isfinite(y).all()
        y.square().mean().backward()
        assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
