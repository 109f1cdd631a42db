"""Transformer (windowed causal attention, RoPE) and TCN (causal dilated convolutions): written-out
references, causality and the window / receptive field, parallel == step loop == chunked scan
with a carried state (1e-9 in float64, 1e-5 in float32) past the window, gradients against the
step loop, a step at position 10,000, ONNX export of ``scan`` at T = 1, 3, 17."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rnnvision_kit.errors import RnnkitError
from rnnvision_kit.nn.layers_baseline import TCN, Transformer
from rnnvision_kit.nn.sequence import SequenceLayer, StateSpec
from tests.layer_checks import (  # noqa: F401 (one_thread: an autouse fixture)
    assert_close,
    check_onnx_chunks,
    one_thread,
    scan_in_chunks,
    step_loop,
)

LAYERS = [Transformer, TCN]
WINDOW = 5  # the Transformer's window in these tests; the TCN's receptive field is 29 (3 levels)
SIZES = (1, 7, 2, 13)  # uneven chunk lengths, cycled


def make(layer_cls, dtype=torch.float64, input_size=5, hidden=8, seed=0, **kwargs):
    torch.manual_seed(seed)
    if layer_cls is Transformer:
        kwargs.setdefault("window", WINDOW)
        kwargs.setdefault("heads", 2)
    else:
        kwargs.setdefault("levels", 3)
    layer = layer_cls(input_size, hidden, **kwargs).to(dtype).eval()
    if layer_cls is TCN:  # positive biases: fewer dead ReLUs, every tap of the field counts
        with torch.no_grad():
            for conv in layer.convs:
                conv.bias.uniform_(0.05, 0.3)
    return layer


def context(layer) -> int:
    """Steps an output depends on: the window or the receptive field."""
    return layer.window if isinstance(layer, Transformer) else layer.receptive_field


def random_state(layer, batch: int, dtype: torch.dtype, seed: int = 1) -> tuple:
    g = torch.Generator().manual_seed(seed)
    state = []
    for spec in layer.state_spec():
        if spec.dtype == "param":
            state.append(torch.randn(batch, *spec.shape, generator=g, dtype=dtype))
        else:  # the position: before, inside and past the window, one per sample
            state.append(torch.tensor([[0], [3], [100]][:batch]))
    return tuple(state)


def assert_states(actual, expected, dtype):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        if a.dtype.is_floating_point:
            assert_close(a, e, dtype)
        else:
            assert torch.equal(a, e)


# ----------------------------------------------------------------- written-out references


def attention_reference(layer: Transformer, x):
    """The block from the papers, one step at a time: RoPE as a complex rotation of channel pairs
    ``(x_i, x_{i+d/2})`` by ``t * base^(-i/(d/2))``, scores ``Re(q conj k) / sqrt(d)`` over
    ``s`` in ``(t - window, t]``, softmax, values; residual, pre-norm MLP, residual."""
    u = layer.proj(x)
    batch, length, _ = u.shape
    n, d = layer.heads, layer.head_size
    q, k, v = layer.qkv(layer.attn_norm(u)).reshape(batch, length, 3, n, d).unbind(2)
    freq = layer.rope_base ** (-torch.arange(d // 2, dtype=torch.float64) / (d // 2))
    angle = torch.arange(length, dtype=torch.float64)[:, None] * freq
    complex_dtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    rotation = torch.polar(torch.ones_like(angle), angle).to(complex_dtype)[:, None, :]

    def rope(z):
        return torch.complex(z[..., : d // 2], z[..., d // 2 :]) * rotation  # B,T,n,d/2

    qc, kc = rope(q), rope(k)
    outs = []
    for t in range(length):
        lo = max(0, t - layer.window + 1)
        scores = (qc[:, t, None] * kc[:, lo : t + 1].conj()).real.sum(-1) / math.sqrt(d)
        weights = torch.softmax(scores, dim=1)  # B, s, n
        outs.append((weights[..., None] * v[:, lo : t + 1]).sum(1).flatten(1))
    h = u + layer.attn_out(torch.stack(outs, 1))
    return h + layer.mlp(layer.mlp_norm(h))


def tcn_reference(layer: TCN, x):
    """Bai et al.'s residual blocks, one tap at a time: a causal convolution is
    ``y_t = b + sum_j W_j x_{t - (K-1-j) d}`` with zeros before the first step."""
    h, kernel = x, layer.kernel_size
    for level in range(layer.levels):
        dilation = 2**level
        skip = layer.skips[level]
        residual = h if isinstance(skip, torch.nn.Identity) else h @ skip.weight[:, :, 0].T
        residual = residual + (0 if isinstance(skip, torch.nn.Identity) else skip.bias)
        z = h
        for conv in layer.convs[2 * level : 2 * level + 2]:
            out = []
            for t in range(z.shape[1]):
                acc = conv.bias.expand(z.shape[0], -1)
                for j in range(kernel):
                    s = t - (kernel - 1 - j) * dilation
                    if s >= 0:
                        acc = acc + z[:, s] @ conv.weight[:, :, j].T
                out.append(acc)
            z = torch.relu(torch.stack(out, 1))
        h = torch.relu(z + residual)
    return h


def reference(layer, x):
    return (
        attention_reference(layer, x) if isinstance(layer, Transformer) else tcn_reference(layer, x)
    )


# ------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("input_size", [5, 8])
def test_parallel_matches_written_out_reference(layer_cls, dtype, input_size):
    layer = make(layer_cls, dtype, input_size=input_size)
    x = torch.randn(3, 37, input_size, dtype=dtype)
    with torch.no_grad():
        assert_close(layer(x), reference(layer, x), dtype)


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("length", "input_size"), [(1, 5), (3, 8), (41, 5), (70, 8)])
def test_parallel_equals_step_loop_and_chunked_scan(layer_cls, dtype, length, input_size):
    # 41 and 70 are past the window (5) and the receptive field (29)
    layer = make(layer_cls, dtype, input_size=input_size)
    x = torch.randn(3, length, input_size, dtype=dtype) * 2
    with torch.no_grad():
        parallel = layer(x)
        assert parallel.shape == (3, length, 8) and parallel.dtype == dtype
        steps, last = step_loop(layer, x)
        assert_close(steps, parallel, dtype)
        whole, whole_last = layer.scan(x)
        assert_close(whole, parallel, dtype)
        parts, parts_last = scan_in_chunks(layer, x, sizes=SIZES)
        assert_close(parts, parallel, dtype)
        assert_states(whole_last, last, dtype)
        assert_states(parts_last, last, dtype)


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_random_state_scan_equals_step_loop_and_chunks(layer_cls, dtype):
    # a carried state full of history (positions 0, 3 and 100 for the Transformer's samples)
    layer = make(layer_cls, dtype, weight_norm=True) if layer_cls is TCN else make(layer_cls, dtype)
    x = torch.randn(3, 45, 5, dtype=dtype)
    state = random_state(layer, 3, dtype)
    with torch.no_grad():
        steps, last = step_loop(layer, x, state)
        whole, whole_last = layer.scan(x, state)
        parts, parts_last = scan_in_chunks(layer, x, state, SIZES)
    assert_close(whole, steps, dtype)
    assert_close(parts, steps, dtype)
    assert_states(whole_last, last, dtype)
    assert_states(parts_last, last, dtype)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_causal_and_bounded_context(layer_cls):
    layer = make(layer_cls)
    span = context(layer)
    length, t = span + 12, span + 6
    x = torch.randn(2, length, 5, dtype=torch.float64)
    with torch.no_grad():
        y = layer(x)
        later = x.clone()
        later[:, t + 1 :] = torch.randn_like(later[:, t + 1 :]) * 5
        assert torch.equal(layer(later)[:, : t + 1], y[:, : t + 1])  # causal
        streamed = layer.scan(x)[0][:, : t + 1]
        assert torch.equal(layer.scan(later)[0][:, : t + 1], streamed)
        older = x.clone()
        older[:, : t - span + 1] = torch.randn_like(older[:, : t - span + 1]) * 5
        assert torch.equal(layer(older)[:, t], y[:, t])  # nothing before the context counts
        edge = x.clone()
        edge[:, t - span + 1] += 5.0  # the oldest step inside the context does
        assert (layer(edge)[:, t] - y[:, t]).abs().max() > 1e-6


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_parallel_gradients_match_step_loop(layer_cls):
    dtype = torch.float64
    layer = make(layer_cls, dtype, levels=2) if layer_cls is TCN else make(layer_cls, dtype)
    length = context(layer) + 6  # the window / receptive field (13) slides
    x = torch.randn(2, length, 5, dtype=dtype)
    weight = torch.randn(2, length, 8, dtype=dtype)
    grads = []
    for mode in ("parallel", "steps"):
        layer.zero_grad()
        xi = x.clone().requires_grad_()
        y = layer(xi) if mode == "parallel" else step_loop(layer, xi)[0]
        (y * weight).sum().backward()
        grads.append([xi.grad] + [p.grad for p in layer.parameters()])
    assert len(grads[0]) == 1 + len(list(layer.parameters()))
    for got, ref in zip(*grads, strict=True):
        assert ref is not None and ref.abs().sum() > 0
        assert_close(got, ref, dtype)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_scan_gradients_match_step_loop_from_a_random_state(layer_cls):
    dtype = torch.float64
    layer = make(layer_cls, dtype)
    x = torch.randn(3, 9, 5, dtype=dtype)
    state = random_state(layer, 3, dtype)
    grads = []
    for mode in ("scan", "steps"):
        layer.zero_grad()
        xi = x.clone().requires_grad_()
        si = tuple(s.clone().requires_grad_(s.is_floating_point()) for s in state)
        y, last = layer.scan(xi, si) if mode == "scan" else step_loop(layer, xi, si)
        g = torch.Generator().manual_seed(5)  # randn_like would follow each tensor's strides
        floats = [t for t in (y, *last) if t.is_floating_point()]
        loss = sum((t * torch.randn(t.shape, generator=g, dtype=dtype)).sum() for t in floats)
        loss.backward()
        floats = [s.grad for s in si if s.is_floating_point()]
        grads.append([xi.grad, *floats] + [p.grad for p in layer.parameters()])
    for got, ref in zip(*grads, strict=True):
        assert ref is not None and ref.abs().sum() > 0
        assert_close(got, ref, dtype)


@pytest.mark.parametrize(("dtype", "position"), [(torch.float64, 10_000), (torch.float32, 10**9)])
def test_transformer_step_at_a_far_position_sees_only_relative_offsets(dtype, position):
    # RoPE scores depend on offsets only: once the window holds real steps, a stream whose
    # counter starts at ``position`` gives what one starting at 0 gives
    layer = make(Transformer, dtype)
    x = torch.randn(2, 3 * WINDOW, 5, dtype=dtype)
    zero = layer.initial_state(2)
    far = (*zero[:2], zero[2] + position)
    with torch.no_grad():
        y0, s0 = step_loop(layer, x, zero)
        y1, s1 = step_loop(layer, x, far)
        y2, s2 = scan_in_chunks(layer, x, far, SIZES)
    assert_close(y1[:, WINDOW - 1 :], y0[:, WINDOW - 1 :], dtype)
    assert_close(y2, y1, dtype)
    assert s1[2].tolist() == [[position + 3 * WINDOW]] * 2 and torch.equal(s2[2], s1[2])
    assert_close(s1[1], s0[1], dtype)  # values carry no position


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("input_size", [5, 8])
def test_state_spec_matches_initial_state(layer_cls, input_size):
    layer = make(layer_cls, torch.float32, input_size=input_size)
    spec = layer.state_spec()
    assert all(isinstance(s, StateSpec) for s in spec)
    if layer_cls is Transformer:
        assert [(s.name, s.shape, s.dtype) for s in spec] == [
            ("k", (2, WINDOW, 4), "param"),
            ("v", (2, WINDOW, 4), "param"),
            ("pos", (1,), "int64"),
        ]
    else:
        lengths = [2, 2, 4, 4, 8, 8]  # (kernel_size - 1) * 2**level, two convolutions a level
        channels = [input_size] + [8] * 5
        assert [s.shape for s in spec] == list(zip(lengths, channels, strict=True))
        assert [s.name for s in spec[:2]] == ["level0_conv1", "level0_conv2"]
        assert layer.receptive_field == 29
    state = layer.initial_state(3)
    assert len(state) == len(spec)
    for s, tensor in zip(spec, state, strict=True):
        assert tensor.shape == (3, *s.shape) and not tensor.any()
        assert tensor.dtype == (torch.float32 if s.dtype == "param" else torch.int64)
    next_state = state
    for _ in range(context(layer) + 3):  # the state keeps its shape however long the stream
        y, next_state = layer.step(torch.randn(3, input_size), next_state)
    assert y.shape == (3, 8) and y.dtype == torch.float32
    assert [(t.shape, t.dtype) for t in next_state] == [(t.shape, t.dtype) for t in state]
    assert all(t.is_contiguous() for t in next_state)
    y, same = layer.scan(torch.randn(3, 0, input_size), next_state)
    assert y.shape == (3, 0, 8) and all(a is b for a, b in zip(same, next_state, strict=True))
    assert layer.initial_state(2, dtype=torch.float64)[0].dtype == torch.float64
    assert layer.causal and layer.stream_blocker is None and isinstance(layer, SequenceLayer)


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("input_size", [5, 8])
def test_onnx_chunks_match_step_loop(layer_cls, input_size, tmp_path):
    # the check's state: random floats, and pos = T (1 and 3: part of the window, 17: past it)
    kwargs = {"weight_norm": True} if layer_cls is TCN else {}
    layer = make(layer_cls, torch.float32, input_size=input_size, **kwargs)
    differences = check_onnx_chunks(layer, tmp_path)
    assert sorted(differences) == [1, 3, 17] and max(differences.values()) < 1e-4


def test_onnx_transformer_at_a_far_position(tmp_path):
    import onnxruntime as ort

    layer = make(Transformer, torch.float32)
    check_onnx_chunks(layer, tmp_path)
    session = ort.InferenceSession(str(tmp_path / "layer.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 11, 5)
    state = (*random_state(layer, 2, torch.float32)[:2], torch.tensor([[10_000], [7]]))
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, dict(zip(names, [t.numpy() for t in (x, *state)], strict=True)))
    with torch.no_grad():
        y, last = step_loop(layer, x, state)
    np.testing.assert_allclose(got[0], y.numpy(), rtol=1e-4, atol=1e-4)
    assert got[3].tolist() == [[10_011], [18]] and torch.equal(torch.from_numpy(got[3]), last[2])


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_onnx_forward_keeps_time_dynamic(layer_cls, tmp_path):
    # a clip export traces ``forward``: the Transformer then takes the loop-free scan form
    import onnxruntime as ort

    layer = make(layer_cls, torch.float32)
    path = tmp_path / "forward.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            layer,
            (torch.randn(2, 6, 5),),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch", 1: "time"}, "y": {0: "batch", 1: "time"}},
            opset_version=17,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for length in (1, 3, 17):
        x = torch.randn(3, length, 5)
        with torch.no_grad():
            expected = layer(x).numpy()
        np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], expected, atol=1e-5)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_dropout_only_in_training(layer_cls):
    layer = make(layer_cls, torch.float32, dropout=0.5)
    x = torch.randn(2, 12, 5)
    with torch.no_grad():
        assert torch.equal(layer(x), layer(x))
        assert_close(step_loop(layer, x)[0], layer(x), torch.float32)
        layer.train()
        assert not torch.equal(layer(x), layer(x))
    quiet = make(layer_cls, torch.float32).train()  # dropout 0: training mode changes nothing
    assert torch.equal(quiet(x), quiet.eval()(x))


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_non_finite_output_raises_one_line(layer_cls):
    layer = make(layer_cls, torch.float32)
    with torch.no_grad():
        next(layer.parameters()).view(-1)[0] = float("nan")
    x = torch.randn(2, 9, 5)
    for run in (lambda: layer(x), lambda: layer.step(x[:, 0]), lambda: layer.scan(x)):
        with pytest.raises(RnnkitError, match=layer_cls.__name__) as info:
            run()
        assert "\n" not in str(info.value) and "non-finite" in str(info.value)


def test_bad_settings_are_refused():
    for kwargs, match in [
        ({"heads": 3}, "heads"),  # 8 channels do not split in 3
        ({"heads": 8}, "even"),  # heads of one channel cannot rotate
        ({"window": 0}, "window"),
        ({"window": None}, "window"),
        ({"mlp_ratio": 0.0}, "mlp_ratio"),
        ({"dropout": 1.0}, "dropout"),
    ]:
        with pytest.raises(ValueError, match=match):
            Transformer(4, 8, **kwargs)
    for kwargs, match in [({"levels": 0}, "levels"), ({"kernel_size": 1}, "kernel_size")]:
        with pytest.raises(ValueError, match=match):
            TCN(4, 8, **kwargs)


def test_float32_long_input_trains():
    for layer in (Transformer(6, 16), TCN(6, 16, weight_norm=True)):
        x = torch.randn(4, 150, 6) * 10
        y = layer(x)
        assert torch.isfinite(y).all() and y.shape == (4, 150, 16)
        F.mse_loss(y, torch.zeros_like(y)).backward()
        assert all(
            torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in layer.parameters()
        )
