"""ConvGRU / ConvLSTM cells and sequence layers: numerics against the reference, shapes, grads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from rnnvision_kit.errors import ConfigError
from rnnvision_kit.nn._reference import NaiveConvGRUCell, copy_naive_to_fused, naive_sequence
from rnnvision_kit.nn.convrnn import ConvGRU, ConvGRUCell, ConvLSTM, ConvLSTMCell

B, T, C, H, W = 2, 3, 3, 8, 10


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    # tiny tensors: thread hand-offs cost more than they save, worst on a busy machine
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def clip(requires_grad: bool = False) -> torch.Tensor:
    return torch.randn(B, T, C, H, W, requires_grad=requires_grad)


@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (5, 2), (1, 1)])
def test_fused_cell_matches_naive_cell(kernel_size: int, dilation: int) -> None:
    naive = NaiveConvGRUCell(C, 4, kernel_size, dilation).double()
    cell = ConvGRUCell(C, 4, kernel_size, dilation).double()
    copy_naive_to_fused(naive, cell)
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    h = torch.randn(B, 4, H, W, dtype=torch.float64)
    torch.testing.assert_close(cell(x, h), naive(x, h))
    # a None state is the zero state (the fused cell skips its hidden convolutions)
    torch.testing.assert_close(cell(x), naive(x, torch.zeros_like(h)))


def test_sequence_layer_matches_unrolled_naive_cell() -> None:
    naive = NaiveConvGRUCell(C, 4)
    layer = ConvGRU(C, 4)
    copy_naive_to_fused(naive, layer.cells[0])
    x = clip()
    out, states = layer(x)
    expected = naive_sequence(naive, x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(states[0], expected[:, -1], rtol=1e-5, atol=1e-5)
    h0 = torch.randn(B, 4, H, W)
    out, _ = layer(x, [h0])
    torch.testing.assert_close(out, naive_sequence(naive, x, h0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rnn", [ConvGRU, ConvLSTM])
def test_batched_and_per_frame_input_convolutions_agree(rnn: type) -> None:
    layer = rnn(C, 4, num_layers=2, bidirectional=True)
    x = clip()
    layer.batch_input_conv = False
    per_frame, _ = layer(x)
    layer.batch_input_conv = True
    batched, _ = layer(x)
    torch.testing.assert_close(batched, per_frame)


def test_backward_direction_runs_reversed_time() -> None:
    layer = ConvGRU(C, 4, bidirectional=True)
    naive = NaiveConvGRUCell(C, 4)
    copy_naive_to_fused(naive, layer.cells[1])
    x = clip()
    out, states = layer(x)
    expected = naive_sequence(naive, x.flip(1)).flip(1)
    torch.testing.assert_close(out[:, :, 4:], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(states[0][:, 4:], expected[:, 0], rtol=1e-5, atol=1e-5)


def test_lstm_cell_equations() -> None:
    cell = ConvLSTMCell(C, 4).double()
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    h, c = torch.randn(2, B, 4, H, W, dtype=torch.float64)
    gates = cell.input_conv(x) + cell.hidden_conv(h)
    i, f, o, g = gates.chunk(4, 1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    out_h, out_c = cell(x, (h, c))
    torch.testing.assert_close(out_c, c_new)
    torch.testing.assert_close(out_h, h_new)
    zero = torch.zeros_like(h)
    for got, want in zip(cell(x), cell(x, (zero, zero)), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("rnn", [ConvGRU, ConvLSTM])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("init_state", ["zero", "learned"])
def test_shapes_for_all_options(rnn: type, bidirectional: bool, init_state: str) -> None:
    layer = rnn(
        C,
        [4, 6],
        num_layers=2,
        kernel_size=(3, 5),
        dilation=2,
        bidirectional=bidirectional,
        init_state=init_state,
    )
    d = 2 if bidirectional else 1
    out, states = layer(clip())
    assert out.shape == (B, T, d * 6, H, W)
    assert layer.out_channels == d * 6
    assert len(states) == 2
    for state, hid in zip(states, [4, 6], strict=True):
        parts = (state,) if rnn is ConvGRU else state
        assert len(parts) == (1 if rnn is ConvGRU else 2)
        for part in parts:
            assert part.shape == (B, d * hid, H, W)


def test_bidirectional_doubles_channels() -> None:
    uni, _ = ConvGRU(C, 5)(clip())
    bi, _ = ConvGRU(C, 5, bidirectional=True)(clip())
    assert bi.shape[2] == 2 * uni.shape[2] == 10


def test_given_initial_state_broadcasts_and_is_used() -> None:
    layer = ConvLSTM(C, 4, num_layers=2)
    x = clip()
    zero_out, _ = layer(x)
    state = [(torch.ones(4, 1, 1), torch.ones(4, 1, 1)), (torch.zeros(1, 4, H, W),) * 2]
    out, _ = layer(x, state)
    assert out.shape == zero_out.shape
    assert not torch.allclose(out, zero_out)


@pytest.mark.parametrize("rnn", [ConvGRU, ConvLSTM])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_flow_to_input_and_all_parameters(rnn: type, bidirectional: bool) -> None:
    layer = rnn(C, 4, num_layers=2, bidirectional=bidirectional, init_state="learned")
    x = clip(requires_grad=True)
    out, states = layer(x)
    last = states[-1] if rnn is ConvGRU else states[-1][1]
    (out.square().mean() + last.mean()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in layer.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("rnn", [ConvGRU, ConvLSTM])
def test_learned_initial_state_is_trained(rnn: type) -> None:
    layer = rnn(C, 4, init_state="learned")
    assert len(list(layer.initial_states)) == (1 if rnn is ConvGRU else 2)
    before = [p.detach().clone() for p in layer.initial_states]
    x = clip()
    target = torch.ones(B, T, 4, H, W)
    losses = []
    for _ in range(5):  # plain SGD steps
        layer.zero_grad()
        loss = (layer(x)[0] - target).square().mean()
        loss.backward()
        with torch.no_grad():
            for p in layer.parameters():
                p -= 0.5 * p.grad
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert any(
        not torch.equal(a, b.detach()) for a, b in zip(before, layer.initial_states, strict=True)
    )
    # a zero-init layer has no such parameters
    assert len(list(rnn(C, 4).initial_states)) == 0


def test_autocast_bfloat16_runs() -> None:
    layer = ConvGRU(C, 4, init_state="learned")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = layer(clip())
    assert out.shape == (B, T, 4, H, W)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hidden_channels": [4, 4], "num_layers": 3},
        {"hidden_channels": 4, "kernel_size": 4},
        {"hidden_channels": 4, "init_state": "random"},
        {"hidden_channels": 0},
        {"hidden_channels": 4, "num_layers": 0},
    ],
)
def test_bad_options_raise_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        ConvGRU(C, **kwargs)


def test_bad_input_shape_raises() -> None:
    layer = ConvGRU(C, 4)
    with pytest.raises(ValueError, match="input channels"):
        layer(torch.randn(B, T, C + 1, H, W))
    with pytest.raises(ValueError, match="B,T,C,H,W"):
        layer(torch.randn(B, C, H, W))
