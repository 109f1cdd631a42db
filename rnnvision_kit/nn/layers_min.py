"""minGRU and minLSTM: gated linear recurrences that train in parallel (:func:`linear_scan`).

Feng, Tung, Ahmed, Bengio, Hajimirsadeghi (2024), "Were RNNs All We Needed?",
arXiv:2410.01201. Both drop the hidden-state dependence of the gates, so that
``h_t = a_t * h_{t-1} + b_t`` with ``a_t, b_t`` functions of ``x_t`` only, and use the paper's
positive candidate activation ``g(x) = x + 0.5 if x >= 0 else sigmoid(x)`` (its log-space
version). The gates are computed in a numerically safe form (``1 - sigmoid(k) = sigmoid(-k)``,
the minLSTM normalisation as a sigmoid of a difference of log-sigmoids), so saturated gates give
``a = 0`` or ``a = 1`` exactly and never NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnvision_kit.nn.scan import export_scan, linear_scan
from rnnvision_kit.nn.sequence import SequenceLayer, State, StateSpec, tracing

__all__ = ["MinGRU", "MinLSTM", "min_g"]


def min_g(x: Tensor) -> Tensor:
    """The paper's candidate activation: ``x + 0.5`` for ``x >= 0``, ``sigmoid(x)`` below
    (continuous, positive, linear growth)."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def _g_and_slope(pre: Tensor) -> tuple[Tensor, Tensor]:
    """``g(pre)`` and ``g'(pre)`` (1 at and above 0, ``sigmoid'`` below), without autograd and
    without boolean-mask kernels (``where``/``masked_fill`` are several times slower on CPU)."""
    sig = torch.sigmoid(pre.clamp(max=0.0))
    g = pre.clamp(min=0.0).add_(sig)  # x + 0.5 above 0 (sigmoid(0) = 0.5), sigmoid(x) below
    slope = sig.mul_(1.0 - sig)  # sigmoid'(min(x, 0)): 0.25 for x >= 0, raised to 1 below
    slope.add_((pre >= 0).to(pre.dtype), alpha=0.75)
    return g, slope


def _log_sigmoid(k: Tensor) -> Tensor:
    """``log sigmoid(k) = min(k, 0) - log(1 + exp(-|k|))``: exact to rounding for any ``k`` and
    about five times faster than ``F.logsigmoid`` on CPU."""
    return k.clamp(max=0.0).sub_(k.abs().neg_().exp_().add_(1.0).log_())


class _MinGRUCoefficients(torch.autograd.Function):
    """``u = [k | pre]`` -> ``a = 1 - sigmoid(k) = sigmoid(-k)``, ``b = sigmoid(k) * g(pre)``,
    with a hand-written backward (fewer passes over the data than autograd through ``where``
    and ``chunk``)."""

    @staticmethod
    def forward(ctx, u: Tensor) -> tuple[Tensor, Tensor]:
        k, pre = u.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        a = torch.sigmoid(-k)
        g, slope = _g_and_slope(pre)
        ctx.save_for_backward(z, a, g, slope)
        return a, z * g

    @staticmethod
    def backward(ctx, grad_a: Tensor, grad_b: Tensor):
        z, a, g, slope = ctx.saved_tensors
        n = z.shape[-1]
        grad_u = z.new_empty((*z.shape[:-1], 2 * n))
        # da/dk = -a z, db/dk = a z g, db/dpre = z g'
        torch.mul(grad_b * g - grad_a, a * z, out=grad_u[..., :n])
        torch.mul(grad_b * z, slope, out=grad_u[..., n:])
        return grad_u


class _MinLSTMCoefficients(torch.autograd.Function):
    """``u = [kf | ki | pre]`` -> ``d = log sigmoid(kf) - log sigmoid(ki)``,
    ``a = f' = sigmoid(d)``, ``b = i' g(pre) = sigmoid(-d) g(pre)``, hand-written backward."""

    @staticmethod
    def forward(ctx, u: Tensor) -> tuple[Tensor, Tensor]:
        kf, ki, pre = u.chunk(3, dim=-1)
        d = _log_sigmoid(kf).sub_(_log_sigmoid(ki))
        a = torch.sigmoid(d)
        i = torch.sigmoid(-d)
        g, slope = _g_and_slope(pre)
        ctx.save_for_backward(torch.sigmoid(-kf), torch.sigmoid(-ki), a, i, g, slope)
        return a, i * g

    @staticmethod
    def backward(ctx, grad_a: Tensor, grad_b: Tensor):
        sf, si, a, i, g, slope = ctx.saved_tensors
        n = a.shape[-1]
        grad_u = a.new_empty((*a.shape[:-1], 3 * n))
        # da/dd = a i, db/dd = -a i g; dd/dkf = sigmoid(-kf), dd/dki = -sigmoid(-ki)
        grad_d = (grad_a - grad_b * g).mul_(a).mul_(i)
        torch.mul(grad_d, sf, out=grad_u[..., :n])
        torch.mul(grad_d, si, out=grad_u[..., n : 2 * n]).neg_()
        torch.mul(grad_b * i, slope, out=grad_u[..., 2 * n :])
        return grad_u


class _MinRecurrence(SequenceLayer):
    """Shared body: ``x -> (a, b)`` per step, the scan, an optional output projection."""

    _gate_chunks = 2

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        expansion: float = 1.0,
        bias: bool = True,
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError("input_size and hidden_size must be >= 1")
        if expansion <= 0:
            raise ValueError(f"expansion must be > 0, got {expansion}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.inner_size = max(1, round(hidden_size * expansion))
        self.chunk = chunk
        self.gates = nn.Linear(input_size, self._gate_chunks * self.inner_size, bias=bias)
        self.out: nn.Module = (
            nn.Linear(self.inner_size, hidden_size, bias=False)
            if self.inner_size != hidden_size
            else nn.Identity()
        )

    def coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``a, b`` of ``h_t = a_t * h_{t-1} + b_t`` for ``x: ...,F`` (each ``...,inner``)."""
        raise NotImplementedError  # pragma: no cover

    def state_spec(self) -> tuple[StateSpec, ...]:
        return (StateSpec("h", (self.inner_size,)),)

    def forward(self, x: Tensor) -> Tensor:
        if tracing():  # linear_scan's reshapes would fix the batch size of an exported graph
            return self.scan(x)[0]
        a, b = self.coefficients(x)
        return self.out(linear_scan(a, b, chunk=self.chunk))

    def scan(self, chunk: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if state is None:
            state = self.initial_state(chunk.shape[0], chunk.device, chunk.dtype)
        a, b = self.coefficients(chunk)
        if tracing():  # export: a loop-free scan keeps the graph's time axis dynamic
            h = export_scan(a, b, state[0])
        else:
            h = linear_scan(a, b, state[0], chunk=self.chunk)
        return self.out(h), ((h[:, -1],) if h.shape[1] else state)

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if state is None:
            state = self.initial_state(x_t.shape[0], x_t.device, x_t.dtype)
        a, b = self.coefficients(x_t)
        h = torch.addcmul(b, a, state[0])
        return self.out(h), (h,)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, inner_size={self.inner_size}"


class MinGRU(_MinRecurrence):
    """minGRU (Feng et al. 2024, "Were RNNs All We Needed?", arXiv:2410.01201).

    ``z_t = sigmoid(W_z x_t)``, ``h~_t = g(W_h x_t)``, ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``;
    the state ``h`` has ``inner_size = round(hidden_size * expansion)`` channels, projected to
    ``hidden_size`` by a bias-free linear layer when ``expansion != 1``.
    """

    _gate_chunks = 2

    def coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return _MinGRUCoefficients.apply(self.gates(x))


class MinLSTM(_MinRecurrence):
    """minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv:2410.01201).

    ``f_t = sigmoid(W_f x_t)``, ``i_t = sigmoid(W_i x_t)``, ``h~_t = g(W_h x_t)``, normalised gates
    ``f'_t = f_t / (f_t + i_t)``, ``i'_t = i_t / (f_t + i_t)`` (time-independent scale, the
    paper's length-generalising form) and ``h_t = f'_t h_{t-1} + i'_t h~_t``; computed as
    ``f' = sigmoid(log f - log i)``. State and ``expansion`` as :class:`MinGRU`.
    """

    _gate_chunks = 3

    def coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return _MinLSTMCoefficients.apply(self.gates(x))
