"""Mamba and mLSTM: parallel == step loop == chunked scan with a carried state (1e-9 in float64,
1e-5 in float32), saturated gates, gradients against the step loop's autograd, independent
references written from the papers, ONNX export of ``scan``, the non-finite check."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from rnnvision_kit.errors import RnnkitError
from rnnvision_kit.nn import StateSpec, layers_select, sequential_scan
from rnnvision_kit.nn.layers_select import MLSTM, Mamba
from tests.layer_checks import (  # noqa: F401 (one_thread: an autouse fixture)
    assert_close,
    check_onnx_chunks,
    one_thread,
    scan_in_chunks,
    step_loop,
)

LAYERS = [Mamba, MLSTM]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mamba's selective scan in blocks of a few channels, so that tests cross block edges."""
    monkeypatch.setattr(layers_select, "_BLOCK_ELEMENTS", 3 * 2 * 41 * 4)


def make(layer_cls, dtype, input_size=5, hidden=8, **kwargs):
    torch.manual_seed(0)
    if layer_cls is Mamba:
        kwargs.setdefault("state_size", 4)
        kwargs.setdefault("dt_max", 0.5)
    kwargs.setdefault("chunk", 4)
    layer = layer_cls(input_size, hidden, **kwargs)
    if layer_cls is MLSTM:
        well_conditioned(layer)
    return layer.to(dtype).eval()


def well_conditioned(layer: MLSTM) -> None:
    """Input-dependent gates (their weights start at 0), and queries and keys with a common
    positive part. With random-sign ``k_s . q_t`` the normaliser ``|n_t . q_t|`` can cancel to
    near 0 (the paper's ``max(|n^T q|, 1)``): the output is then ill-conditioned, a float32
    rounding of the input moves it by up to 1e-3 (measured), whatever the algorithm."""
    with torch.no_grad():
        layer.gates.weight.normal_(std=1.0)
        layer.proj.bias[: 2 * layer.heads * layer.qk_size] = 3.0


def random_state(layer, batch, dtype, generator=None):
    return tuple(
        torch.randn(batch, *s.shape, dtype=dtype, generator=generator) for s in layer.state_spec()
    )


def assert_same_run(layer, x, state, dtype):
    """Parallel (``scan`` from ``state``), the step loop and uneven chunks agree, states too."""
    with torch.no_grad():
        y, last = layer.scan(x, state)
        y_steps, last_steps = step_loop(layer, x, state)
        y_chunks, last_chunks = scan_in_chunks(layer, x, state, (5, 1, 7))
    assert_close(y, y_steps, dtype)
    assert_close(y_chunks, y_steps, dtype)
    for a, b, c in zip(last, last_steps, last_chunks, strict=True):
        assert_close(a, b, dtype)
        assert_close(c, b, dtype)
    return y


# ------------------------------------------------------------------------------ equivalence


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("length", [1, 3, 17, 41])
def test_parallel_equals_step_loop_and_chunked_scan(layer_cls, dtype, length):
    layer = make(layer_cls, dtype)
    x = torch.randn(3, length, 5, dtype=dtype) * 2
    with torch.no_grad():
        parallel = layer(x)
    assert parallel.shape == (3, length, 8) and parallel.dtype == dtype
    y = assert_same_run(layer, x, None, dtype)
    assert_close(y, parallel, dtype)


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_long_sequence_default_chunk_from_random_state(layer_cls, dtype):
    torch.manual_seed(1)
    layer = layer_cls(4, 8).to(dtype)
    x = torch.randn(2, 200, 4, dtype=dtype)
    state = random_state(layer, 2, dtype)
    assert_same_run(layer, x, state, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mamba_saturated_steps(dtype):
    # Delta = 40 forgets at once (exp(40 A) < 1e-17); Delta = softplus(-40) keeps h (a = 1)
    layer = make(Mamba, dtype, chunk=None)
    with torch.no_grad():
        layer.dt_proj.bias[:4] = 40.0
        layer.dt_proj.bias[4:8] = -40.0
        layer.dt_proj.weight.mul_(20.0)  # Delta swings with the input between the extremes
    x = torch.randn(2, 200, 5, dtype=dtype) * 3
    state = random_state(layer, 2, dtype)
    assert_same_run(layer, x, state, dtype)
    with torch.no_grad():
        a = torch.exp(F.softplus(layer.dt_proj.bias)[:, None] * -torch.exp(layer.A_log))
    assert a[:4].max() < 1e-15 and (a[4:8] == 1).all() and (a[8:] < 1).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mlstm_saturated_gates(dtype):
    # input gates exp(i~) with i~ in +-160 (exp overflows float32 past 88: the stabiliser's
    # job), forget gates sigmoid(f~) with f~ in +-100 flipping from step to step
    layer = make(MLSTM, dtype, chunk=16)
    with torch.no_grad():
        layer.gates.bias.copy_(torch.tensor([100.0, -100.0, 0.0, 10.0, 30.0, -30.0, 5.0, 30.0]))
        layer.gates.weight.mul_(4.0)
    x = torch.randn(2, 200, 5, dtype=dtype) * 2
    state = random_state(layer, 2, dtype)
    assert_same_run(layer, x, state, dtype)
    y_parallel = layer(x)
    assert torch.isfinite(y_parallel).all()


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("chunk", [4, None])
def test_parallel_gradients_match_step_loop(layer_cls, chunk):
    dtype = torch.float64
    layer = make(layer_cls, dtype, chunk=chunk)
    x = torch.randn(2, 17, 5, dtype=dtype)
    state = random_state(layer, 2, dtype)
    weight = torch.randn(2, 17, 8, dtype=dtype)
    weights = random_state(layer, 2, dtype)
    grads = []
    for parallel in (True, False):
        layer.zero_grad()
        xi = x.clone().requires_grad_()
        si = tuple(s.clone().requires_grad_() for s in state)
        y, last = layer.scan(xi, si) if parallel else step_loop(layer, xi, si)
        loss = (y * weight).sum() + sum((s * w).sum() for s, w in zip(last, weights, strict=True))
        loss.backward()
        grads.append([xi.grad, *(s.grad for s in si), *(p.grad for p in layer.parameters())])
    for got, ref in zip(*grads, strict=True):
        assert ref is not None and ref.abs().sum() > 0
        assert_close(got, ref, dtype)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_gradcheck_small(layer_cls):
    if layer_cls is Mamba:
        layer = make(layer_cls, torch.float64, input_size=3, hidden=2, state_size=3)
    else:
        layer = make(layer_cls, torch.float64, input_size=3, hidden=4, heads=2)
    x = torch.randn(1, 6, 3, dtype=torch.float64, requires_grad=True)
    state = random_state(layer, 1, torch.float64)
    state = tuple(s.requires_grad_() for s in state)

    def run(t: torch.Tensor, *s: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, last = layer.scan(t, s)
        return (y, *last)

    assert torch.autograd.gradcheck(run, (x, *state))


# -------------------------------------------------------------- the papers, written out


def mamba_reference(layer: Mamba, x):
    """The Mamba block as the reference code's slow path (``selective_scan_ref``): a padded
    causal conv, then the flattened recurrence one step at a time."""
    xz = layer.in_proj(x)
    u, z = xz.chunk(2, -1)
    k = layer.conv_size
    u = F.conv1d(
        u.transpose(1, 2), layer.conv1d.weight, layer.conv1d.bias, padding=k - 1, groups=u.shape[-1]
    )
    u = F.silu(u[..., : x.shape[1]]).transpose(1, 2)
    dt, B, C = layer.x_proj(u).split([layer.dt_rank, layer.state_size, layer.state_size], -1)
    delta = F.softplus(dt @ layer.dt_proj.weight.T + layer.dt_proj.bias)
    A = -torch.exp(layer.A_log)
    a = torch.exp(torch.einsum("btd,dn->btdn", delta, A)).flatten(2)
    b = torch.einsum("btd,btn,btd->btdn", delta, B, u).flatten(2)
    h = sequential_scan(a, b).unflatten(-1, A.shape)
    y = torch.einsum("btdn,btn->btd", h, C) + u * layer.D
    return layer.out_proj(y * F.silu(z))


def mlstm_reference(layer: MLSTM, x):
    """The paper's mLSTM without the stabiliser: ``i = exp(i~)``, ``f = sigmoid(f~)``,
    ``C = f C + i v k^T``, ``n = f n + i k``, ``h~ = C q / max(|n^T q|, 1)``, ``h = o * h~``;
    queries, keys and gates from ``SiLU`` of the zero-padded causal convolution of ``x``."""
    batch, length, _ = x.shape
    heads, dk, dv = layer.heads, layer.qk_size, layer.head_size
    xc = x
    if layer.conv is not None:
        padded = F.pad(x.transpose(1, 2), (layer.conv_size - 1, 0))
        xc = F.silu(layer.conv(padded)).transpose(1, 2)
    q, k, _, _ = layer.proj(xc).split([heads * dk, heads * dk, heads * dv, heads * dv], -1)
    _, _, v, o = layer.proj(x).split([heads * dk, heads * dk, heads * dv, heads * dv], -1)
    q, k, v = (t.unflatten(-1, (heads, -1)) for t in (q, k, v))
    k = k / math.sqrt(dk)
    i_pre, f_pre = layer.gates(xc).chunk(2, -1)
    C = x.new_zeros(batch, heads, dv, dk)
    n = x.new_zeros(batch, heads, dk)
    out = []
    for t in range(length):
        i, f = torch.exp(i_pre[:, t]), torch.sigmoid(f_pre[:, t])
        C = f[..., None, None] * C + i[..., None, None] * v[:, t, :, :, None] * k[:, t, :, None]
        n = f[..., None] * n + i[..., None] * k[:, t]
        num = (C @ q[:, t, ..., None]).squeeze(-1)
        den = (n * q[:, t]).sum(-1).abs().clamp(min=1.0)
        out.append((num / den[..., None]).flatten(1) * torch.sigmoid(o[:, t]))
    return layer.out(torch.stack(out, 1))


@pytest.mark.parametrize("conv_size", [4, 1])
def test_mamba_matches_reference(conv_size):
    layer = make(Mamba, torch.float64, conv_size=conv_size)
    x = torch.randn(3, 23, 5, dtype=torch.float64)
    with torch.no_grad():
        assert_close(layer(x), mamba_reference(layer, x), torch.float64)


@pytest.mark.parametrize("conv_size", [4, 1])
def test_mlstm_matches_unstabilised_paper_form(conv_size):
    layer = make(MLSTM, torch.float64, heads=2, qk_size=3, conv_size=conv_size)
    x = torch.randn(3, 23, 5, dtype=torch.float64)
    with torch.no_grad():
        assert_close(layer(x), mlstm_reference(layer, x), torch.float64)


def test_mamba_initialisation():
    torch.manual_seed(3)
    layer = Mamba(40, 40, state_size=6, dt_min=0.002, dt_max=0.05)
    assert layer.inner_size == 80 and layer.dt_rank == 3  # ceil(40 / 16)
    delta = F.softplus(layer.dt_proj.bias.double())
    assert delta.min() >= 0.002 * (1 - 1e-5) and delta.max() <= 0.05 * (1 + 1e-5)
    A = -torch.exp(layer.A_log)
    torch.testing.assert_close(A, -torch.arange(1.0, 7.0).expand(80, 6))
    torch.testing.assert_close(layer.D, torch.ones(80))
    assert layer.dt_proj.weight.abs().max() <= 3**-0.5
    assert layer.in_proj.bias is None and layer.out_proj.bias is None


def test_mlstm_gate_initialisation():
    layer = MLSTM(6, 8, heads=4)
    assert not layer.gates.weight.any()
    torch.testing.assert_close(layer.gates.bias[4:], torch.linspace(3.0, 6.0, 4))
    assert layer.head_size == 2 and layer.qk_size == 2


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_causal(layer_cls):
    layer = make(layer_cls, torch.float64)
    x = torch.randn(2, 12, 5, dtype=torch.float64)
    changed = x.clone()
    changed[:, 7] += 1.0
    with torch.no_grad():
        y, y2 = layer(x), layer(changed)
    assert torch.equal(y[:, :7], y2[:, :7]) and not torch.equal(y[:, 7], y2[:, 7])
    assert layer.causal and layer.stream_blocker is None


# ------------------------------------------------------------------- contract and export


@pytest.mark.parametrize(
    ("layer_cls", "kwargs", "expected"),
    [
        (Mamba, {}, [("conv", (16, 3)), ("h", (16, 16))]),
        (
            Mamba,
            {"state_size": 3, "expand": 1.5, "conv_size": 2},
            [("conv", (12, 1)), ("h", (12, 3))],
        ),
        (Mamba, {"conv_size": 1}, [("h", (16, 16))]),
        (MLSTM, {}, [("conv", (4, 3)), ("C", (4, 2, 2)), ("n", (4, 2)), ("m", (4,))]),
        (MLSTM, {"conv_size": 1}, [("C", (4, 2, 2)), ("n", (4, 2)), ("m", (4,))]),
        (
            MLSTM,
            {"heads": 2, "expand": 2.0, "qk_size": 3, "conv_size": 2},
            [("conv", (4, 1)), ("C", (2, 3, 8)), ("n", (2, 3)), ("m", (2,))],
        ),
    ],
)
def test_state_spec_matches_initial_state(layer_cls, kwargs, expected):
    layer = layer_cls(4, 8, **kwargs)
    spec = layer.state_spec()
    assert all(isinstance(s, StateSpec) for s in spec)
    assert [(s.name, s.shape) for s in spec] == expected
    assert all(s.dtype == "param" for s in spec)
    state = layer.initial_state(3)
    assert [tuple(t.shape) for t in state] == [(3, *s.shape) for s in spec]
    assert all(t.dtype == torch.float32 and not t.any() for t in state)
    y, next_state = layer.step(torch.randn(3, 4), state)
    assert y.shape == (3, 8) and y.dtype == torch.float32
    assert [t.shape for t in next_state] == [t.shape for t in state]
    assert all(t.is_contiguous() for t in next_state)
    y, next_state = layer.scan(torch.randn(3, 6, 4), state)
    assert y.shape == (3, 6, 8) and [t.shape for t in next_state] == [t.shape for t in state]
    y, next_state = layer.scan(torch.randn(3, 0, 4))
    assert y.shape == (3, 0, 8) and len(next_state) == len(spec)
    assert layer(torch.randn(2, 5, 4)).shape == (2, 5, 8)
    assert layer.initial_state(2, dtype=torch.float64)[0].dtype == torch.float64


@pytest.mark.parametrize(
    ("layer_cls", "kwargs"),
    [(Mamba, {}), (Mamba, {"conv_size": 1}), (MLSTM, {}), (MLSTM, {"heads": 2, "qk_size": 3})],
)
def test_onnx_chunks(layer_cls, kwargs, tmp_path):
    torch.manual_seed(0)
    layer = layer_cls(6, 8, **kwargs)
    if layer_cls is MLSTM:
        well_conditioned(layer)
    differences = check_onnx_chunks(layer, tmp_path)
    assert set(differences) == {1, 3, 17}


@pytest.mark.parametrize(
    ("layer_cls", "kwargs", "match"),
    [
        (Mamba, {"state_size": 0}, "state_size"),
        (Mamba, {"expand": 0.0}, "expand"),
        (Mamba, {"conv_size": 0}, "conv_size"),
        (Mamba, {"dt_rank": 0}, "dt_rank"),
        (Mamba, {"dt_min": 0.2, "dt_max": 0.1}, "dt_min"),
        (Mamba, {"chunk": 0}, "chunk"),
        (MLSTM, {"heads": 3}, "heads"),
        (MLSTM, {"heads": 0}, "heads"),
        (MLSTM, {"qk_size": 0}, "qk_size"),
        (MLSTM, {"expand": -1.0}, "expand"),
        (MLSTM, {"chunk": 0}, "chunk"),
    ],
)
def test_invalid_settings(layer_cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        layer_cls(4, 8, **kwargs)


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("where", ["input", "parameter"])
def test_non_finite_raises_one_line(layer_cls, where):
    layer = make(layer_cls, torch.float32)
    x = torch.randn(2, 9, 5)
    if where == "input":
        x[1, 4, 2] = float("inf")
    else:
        name = "A_log" if layer_cls is Mamba else "gates.bias"
        with torch.no_grad():
            dict(layer.named_parameters())[name].view(-1)[0] = float("nan")
    runs = [lambda: layer(x), lambda: step_loop(layer, x), lambda: layer.scan(x[:, 3:6])]
    if where == "input":
        runs = runs[:2]
    for run in runs:
        with pytest.raises(RnnkitError, match=layer_cls.__name__) as info:
            run()
        assert "\n" not in str(info.value) and "non-finite" in str(info.value)


def test_float32_large_input_stays_finite_and_trains():
    for layer_cls in LAYERS:
        torch.manual_seed(0)
        layer = layer_cls(5, 8)
        y = layer(torch.randn(4, 150, 5) * 100)
        assert torch.isfinite(y).all()
        y.square().mean().backward()
        assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_learns_a_leaky_sum(layer_cls, monkeypatch):
    # y_t = 0.6 * sum_s 0.8^(t-s) x_s (unit variance): memory of past steps; 60 Adam steps cut
    # the error by 8x (Mamba) and 100x (mLSTM), about 0.25 s each
    monkeypatch.setattr(layers_select, "_BLOCK_ELEMENTS", 1 << 21)
    torch.manual_seed(0)
    layer = layer_cls(4, 16, chunk=8) if layer_cls is MLSTM else layer_cls(4, 16, state_size=4)
    readout = torch.nn.Linear(16, 4)
    optimiser = torch.optim.Adam([*layer.parameters(), *readout.parameters()], lr=5e-2)
    x = torch.randn(16, 24, 4)
    target = 0.6 * sequential_scan(torch.full_like(x, 0.8), x)

    def loss() -> torch.Tensor:
        return F.mse_loss(readout(layer(x)), target)

    first = loss().item()
    for _ in range(60):
        optimiser.zero_grad()
        loss().backward()
        optimiser.step()
    assert loss().item() < first / 5
