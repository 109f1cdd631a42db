"""Mamba and mLSTM: input-dependent ("selective") recurrences that train in parallel, pure PyTorch.

- :class:`Mamba`: Gu, Dao (2023), "Mamba: Linear-Time Sequence Modeling with Selective State
  Spaces", arXiv:2312.00752: the Mamba block with its S6 selective scan
  ``h_t = exp(Delta_t A) h_{t-1} + Delta_t B_t x_t``, ``y_t = C_t h_t + D x_t``, diagonal per
  (channel, state) pair. Training runs the two-level chunked scan of
  :mod:`rnnvision_kit.nn.scan` over the flattened ``inner x state_size`` channels, a block of
  channels at a time, inside a :class:`torch.autograd.Function` that recomputes the states in
  its backward pass (as the reference CUDA kernel does): memory stays ``O(B T inner)`` instead of
  ``O(B T inner N)``;
- :class:`MLSTM`: Beck, Poeppel, Spanring, Auer, Prudnikova, Kopp, Klambauer, Brandstetter,
  Hochreiter (2024), "xLSTM: Extended Long Short-Term Memory", arXiv:2405.04517: the
  matrix-memory LSTM with exponential input gates and the paper's max-stabiliser. Training runs
  a chunkwise form: the paper's stabilised parallel (attention-like) form inside chunks of
  ``chunk`` steps, all chunks at once, and the matrix state carried between chunks.

While tracing (ONNX export) both run loop-free: Mamba through
:func:`~rnnvision_kit.nn.scan.export_scan` and its convolution over ``[buffer, chunk]``, mLSTM as
one chunk spanning the whole input; so the exported graph keeps a dynamic time axis. Both are
bare mixing layers meant for a pre-norm residual stack (block type "residual"). A non-finite
output or state raises :class:`~rnnvision_kit.errors.RnnkitError` with one line naming the layer
(skipped while tracing or compiling).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnvision_kit.nn.scan import chunked_scan, default_chunk, export_scan
from rnnvision_kit.nn.sequence import (
    SequenceLayer,
    State,
    StateSpec,
    check_finite,
    exporting,
    tracing,
)

__all__ = ["MLSTM", "Mamba"]

# Largest B*T*channels*N block of the selective scan held at once: on CPU a block's few tensors
# stay in a 32 MiB L3 cache (2^21: 8 MiB per float32 tensor; fastest of 2^20..2^23 measured at
# B=32, T=784, H=128, one thread); on a GPU, larger blocks mean fewer kernel launches.
_BLOCK_ELEMENTS = 1 << 21
_BLOCK_ELEMENTS_GPU = 1 << 25


# ---------------------------------------------------------------------------------- Mamba


def _s6_coefficients(u: Tensor, delta: Tensor, A: Tensor, Bm: Tensor) -> tuple[Tensor, Tensor]:
    """``a = exp(Delta A)`` and ``b = Delta B u`` for ``u, delta: B,T,c``, ``A: c,N``,
    ``Bm: B,T,N``; each ``B,T,c*N`` (contiguous), channel-major."""
    batch, length, c = u.shape
    a = torch.exp(delta.unsqueeze(-1) * A)
    b = (delta * u).unsqueeze(-1) * Bm.unsqueeze(2)
    return a.view(batch, length, -1), b.view(batch, length, -1)


def _columns(x: Tensor, lo: int, hi: int) -> Tensor:
    """``x[..., lo:hi]``, contiguous: broadcasting a strided slice is ~10x slower on CPU."""
    return x[..., lo:hi].contiguous()


def _blocks(u: Tensor, shape: torch.Size) -> list[tuple[int, int]]:
    """Channel ranges of at most :data:`_BLOCK_ELEMENTS` ``B*T*c*N`` values each (on CPU) for
    ``u: B,T,D`` and ``A`` of ``shape`` ``D,N``."""
    budget = _BLOCK_ELEMENTS if u.device.type == "cpu" else _BLOCK_ELEMENTS_GPU
    batch, length = u.shape[:2]
    inner, state = shape
    step = max(1, min(inner, budget // max(1, batch * length * state)))
    return [(lo, min(lo + step, inner)) for lo in range(0, inner, step)]


class _SelectiveScan(torch.autograd.Function):
    """``y_t = sum_n C_tn h_tn`` and the last state of ``h_t = exp(Delta_t A) h_{t-1} +
    Delta_t B_t u_t`` (per channel ``d`` and state ``n``), a block of channels at a time.

    ``u, delta: B,T,D``; ``A: D,N``; ``Bm, Cm: B,T,N``; ``h0: B,D,N``. Saves only the inputs;
    the backward recomputes each block's states and runs the scan backwards in time
    (``g_t = C_t dy_t + a_{t+1} g_{t+1}``, ``g_T`` also gets the last state's gradient)."""

    @staticmethod
    def forward(
        ctx, u: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, h0: Tensor, chunk: int
    ) -> tuple[Tensor, Tensor]:
        batch, length, inner = u.shape
        Bm, Cm = Bm.contiguous(), Cm.contiguous()
        y = u.new_empty(batch, length, inner)
        last = u.new_empty(h0.shape)
        for lo, hi in _blocks(u, A.shape):
            u_c, delta_c = _columns(u, lo, hi), _columns(delta, lo, hi)
            a, b = _s6_coefficients(u_c, delta_c, A[lo:hi], Bm)
            h = chunked_scan(a, b, h0[:, lo:hi].reshape(batch, -1), chunk)
            h = h.view(batch, length, hi - lo, -1)
            y[..., lo:hi] = (h @ Cm.unsqueeze(-1)).squeeze(-1)
            last[:, lo:hi] = h[:, -1]
        ctx.save_for_backward(u, delta, A, Bm, Cm, h0)
        ctx.chunk = chunk
        return y, last

    @staticmethod
    def backward(ctx, dy: Tensor, dlast: Tensor):
        u, delta, A, Bm, Cm, h0 = ctx.saved_tensors
        batch, length, inner = u.shape
        Bm, Cm = Bm.contiguous(), Cm.contiguous()
        du, ddelta = torch.empty_like(u), torch.empty_like(delta)
        dA, dh0 = torch.empty_like(A), torch.empty_like(h0)
        dB, dC = torch.zeros_like(Bm), torch.zeros_like(Cm)
        for lo, hi in _blocks(u, A.shape):
            c = hi - lo
            u_c, delta_c, dy_c = (_columns(t, lo, hi) for t in (u, delta, dy))
            a, b = _s6_coefficients(u_c, delta_c, A[lo:hi], Bm)
            h0_c = h0[:, lo:hi].reshape(batch, -1)
            h = chunked_scan(a, b, h0_c, ctx.chunk)
            gy = (dy_c.unsqueeze(-1) * Cm.unsqueeze(2)).view(batch, length, -1)
            a_next = torch.empty_like(a)
            a_next[:, :-1] = a[:, 1:]
            a_next[:, -1] = 1.0  # g_T = gy_T + dlast
            g = chunked_scan(a_next, gy, dlast[:, lo:hi].reshape(batch, -1), ctx.chunk, True)
            # d(Delta A) = g_t h_{t-1} a_t
            ga = g * a
            dh0[:, lo:hi] = ga[:, 0].view(batch, c, -1)
            ga[:, 1:] *= h[:, :-1]
            ga[:, 0] *= h0_c
            h, g, ga = (t.view(batch, length, c, -1) for t in (h, g, ga))
            # (the fastest form of each contraction on CPU, measured)
            dC += (h * dy_c.unsqueeze(-1)).sum(2)
            gB = (g @ Bm.unsqueeze(-1)).squeeze(-1)  # sum_n g B: the gradient of Delta u
            ddelta[..., lo:hi] = (ga * A[lo:hi]).sum(-1).addcmul_(gB, u_c)
            dA[lo:hi] = (ga * delta_c.unsqueeze(-1)).sum((0, 1))
            du[..., lo:hi] = gB * delta_c
            dB += (g * (delta_c * u_c).unsqueeze(-1)).sum(2)
        return du, ddelta, dA, dB, dC, dh0, None


class Mamba(SequenceLayer):
    """The Mamba block (Gu, Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State
    Spaces", arXiv:2312.00752), pure PyTorch, CPU and ONNX friendly.

    ``[x | z] = in_proj(input)`` (``inner = round(expand * hidden_size)`` channels each);
    ``u = SiLU(causal depthwise conv1d(x))`` (kernel ``conv_size``); the selective SSM (S6):
    ``Delta = softplus(dt_proj(W_dt u))`` (rank ``dt_rank``, default ``ceil(hidden_size / 16)``),
    ``B_t, C_t = W_B u_t, W_C u_t`` (``state_size`` each),
    ``h_t = exp(Delta_t A) h_{t-1} + Delta_t B_t u_t`` with ``A = -exp(A_log)`` (``inner x
    state_size``, diagonal per channel), ``y_t = C_t h_t + D u_t``; output
    ``out_proj(y * SiLU(z))``. Initialisation as the reference implementation: S4D-real
    ``A_n = -(n + 1)``, ``D = 1``, ``dt_proj`` weights uniform in ``+-dt_rank^-1/2`` and its bias
    the inverse softplus of ``Delta`` log-uniform in ``[dt_min, dt_max]``; no bias in
    ``in_proj``/``x_proj``/``out_proj``, a bias in the convolution. The state is the
    convolution's last ``conv_size - 1`` inputs (``conv: inner x (conv_size - 1)``, absent when
    ``conv_size = 1``) and the SSM state (``h: inner x state_size``). The block's norm and
    residual come from the stack around it (block type "residual").
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        state_size: int = 16,
        expand: float = 2.0,
        conv_size: int = 4,
        dt_rank: int | None = None,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError("input_size and hidden_size must be >= 1")
        if state_size < 1:
            raise ValueError(f"state_size must be >= 1, got {state_size}")
        if expand <= 0:
            raise ValueError(f"expand must be > 0, got {expand}")
        if conv_size < 1:
            raise ValueError(f"conv_size must be >= 1, got {conv_size}")
        rank = math.ceil(hidden_size / 16) if dt_rank is None else int(dt_rank)
        if rank < 1:
            raise ValueError(f"dt_rank must be >= 1, got {dt_rank}")
        if not 0.0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        if chunk is not None and chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.state_size, self.expand, self.conv_size = state_size, expand, conv_size
        self.dt_rank, self.dt_min, self.dt_max, self.chunk = rank, dt_min, dt_max, chunk
        inner = self.inner_size = max(1, round(hidden_size * expand))
        self.in_proj = nn.Linear(input_size, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, conv_size, groups=inner, bias=True)
        self.x_proj = nn.Linear(inner, rank + 2 * state_size, bias=False)
        self.dt_proj = nn.Linear(rank, inner, bias=True)
        self.out_proj = nn.Linear(inner, hidden_size, bias=False)
        with torch.no_grad():
            nn.init.uniform_(self.dt_proj.weight, -(rank**-0.5), rank**-0.5)
            log_dt = torch.rand(inner, dtype=torch.float64)
            dt = torch.exp(log_dt * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=1e-4)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        n = torch.arange(1, state_size + 1, dtype=torch.float32)
        self.A_log = nn.Parameter(torch.log(n).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))

    def state_spec(self) -> tuple[StateSpec, ...]:
        h = StateSpec("h", (self.inner_size, self.state_size))
        if self.conv_size == 1:
            return (h,)
        return (StateSpec("conv", (self.inner_size, self.conv_size - 1)), h)

    def _split_state(self, state: State | None, x: Tensor) -> tuple[Tensor | None, Tensor]:
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        return (None, state[0]) if self.conv_size == 1 else (state[0], state[1])

    def _join_state(self, buffer: Tensor | None, h: Tensor) -> State:
        return (h,) if buffer is None else (buffer, h)

    def _selective_inputs(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``Delta`` (``...,inner``), ``B`` and ``C`` (``...,state_size``) from ``u``."""
        rank, n = self.dt_rank, self.state_size
        dt, Bm, Cm = self.x_proj(u).split([rank, n, n], dim=-1)
        return F.softplus(self.dt_proj(dt)), Bm, Cm

    def _finish(self, y: Tensor, u: Tensor, z: Tensor) -> Tensor:
        return self.out_proj(torch.addcmul(y, u, self.D) * F.silu(z))

    def forward(self, x: Tensor) -> Tensor:
        return self.scan(x)[0]

    def scan(self, chunk: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        buffer, h0 = self._split_state(state, chunk)
        batch, length = chunk.shape[:2]
        if length == 0 and not exporting():
            return chunk.new_zeros(batch, 0, self.hidden_size), self._join_state(buffer, h0)
        x, z = self.in_proj(chunk).chunk(2, dim=-1)
        x = x.transpose(1, 2)  # B,inner,T
        if buffer is not None:
            x = torch.cat([buffer, x], dim=2)  # the conv's past inputs, then the chunk
            buffer = x[:, :, -(self.conv_size - 1) :].contiguous()
        u = F.silu(F.conv1d(x, self.conv1d.weight, self.conv1d.bias, groups=self.inner_size))
        u = u.transpose(1, 2)  # B,T,inner
        delta, Bm, Cm = self._selective_inputs(u)
        A = -torch.exp(self.A_log)
        if tracing():  # export: the loop-free O(T^2) scan keeps the time axis dynamic
            a, b = _s6_coefficients(u, delta, A, Bm)
            h = export_scan(a, b, h0.flatten(1)).unflatten(-1, A.shape)
            y, last = torch.einsum("btcn,btn->btc", h, Cm), h[:, -1]
        else:
            chunk_size = default_chunk(length) if self.chunk is None else self.chunk
            y, last = _SelectiveScan.apply(u, delta, A, Bm, Cm, h0, chunk_size)
        out = self._finish(y, u, z)
        check_finite(self, (last, out), "lower the learning rate")
        return out, self._join_state(buffer, last)

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        buffer, h = self._split_state(state, x_t)
        x, z = self.in_proj(x_t).chunk(2, dim=-1)
        weight = self.conv1d.weight[:, 0]  # inner, conv_size
        if buffer is None:
            u = x * weight[:, 0]
        else:
            window = torch.cat([buffer, x.unsqueeze(-1)], dim=-1)  # inner, conv_size
            u = (window * weight).sum(-1)
            buffer = window[..., 1:].contiguous()
        u = F.silu(u + self.conv1d.bias)
        delta, Bm, Cm = self._selective_inputs(u)
        A = -torch.exp(self.A_log)
        a = torch.exp(delta.unsqueeze(-1) * A)
        h = torch.addcmul((delta * u).unsqueeze(-1) * Bm.unsqueeze(1), a, h)
        y = (h * Cm.unsqueeze(1)).sum(-1)
        out = self._finish(y, u, z)
        check_finite(self, (h, out), "lower the learning rate")
        return out, self._join_state(buffer, h)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, inner_size={self.inner_size}, "
            f"state_size={self.state_size}, conv_size={self.conv_size}, dt_rank={self.dt_rank}"
        )


# ---------------------------------------------------------------------------------- mLSTM


def _segment_sums(log_f: Tensor) -> Tensor:
    """``[..., t, s] = sum_{s < j <= t} log_f[..., j]`` for ``s <= t``, ``-inf`` above the
    diagonal; ``log_f: ..., L``. Summed directly (a masked cumsum), not as a difference of
    cumulative sums, so a recent step's weight keeps full precision after many strongly
    forgetting ones. Positions come from the input's shape (dynamic under tracing)."""
    position = torch.cumsum(torch.ones_like(log_f.reshape(-1, log_f.shape[-1])[0]), 0)
    later = position.unsqueeze(-1) > position  # t > s
    terms = log_f.unsqueeze(-1).expand(*log_f.shape, log_f.shape[-1])
    sums = torch.cumsum(terms.masked_fill(~later, 0.0), dim=-2)
    return sums.masked_fill(position.unsqueeze(-1) < position, -math.inf)


def _mlstm_chunkwise(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    i_pre: Tensor,
    log_f: Tensor,
    state: State,
    chunk: int | None,
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """The stabilised mLSTM over ``q, k: B,h,T,dk``, ``v: B,h,T,dv``, gates ``i_pre, log_f:
    B,h,T`` from ``state = (C: B,h,dk,dv, n: B,h,dk, m: B,h)``; returns ``h~: B,h,T,dv`` and the
    state after the last step. Chunks of ``chunk`` steps (one chunk spanning ``T`` when None):
    inside each, the paper's parallel form with the entering state as an extra term; the
    stabiliser ``m`` is the step loop's ``m_t = max(log f_t + m_{t-1}, i~_t)``, so the carried
    state is the same stabilised state as :meth:`MLSTM.step`'s."""
    C0, n0, m0 = state
    length = q.shape[2]
    if chunk is None:  # one chunk, no padding: loop-free with a dynamic T (export)
        pad = 0
        q, k, v, i_pre, log_f = (t.unsqueeze(2) for t in (q, k, v, i_pre, log_f))
    else:
        chunk = min(chunk, length)
        count = -(-length // chunk)
        pad = count * chunk - length
        if pad:  # f = 1, i = 0 after the end: the state passes through unchanged
            q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
            log_f = F.pad(log_f, (0, pad), value=0.0)
            i_pre = F.pad(i_pre, (0, pad), value=-math.inf)
        q, k, v = (t.unflatten(2, (count, chunk)) for t in (q, k, v))
        i_pre, log_f = (t.unflatten(2, (count, chunk)) for t in (i_pre, log_f))
    count = q.shape[2]
    cum = torch.cumsum(log_f, dim=-1)  # B,h,n,L: log decay of the entering state
    log_w = _segment_sums(log_f) + i_pre.unsqueeze(-2)  # B,h,n,L(t),L(s)
    inner_max = log_w.amax(dim=-1)  # B,h,n,L
    m_in = [m0]  # the stabiliser entering each chunk
    for j in range(count - 1):
        m_in.append(torch.maximum(m_in[-1] + cum[..., j, -1], inner_max[..., j, -1]))
    m_enter = torch.stack(m_in, dim=-1)  # B,h,n
    m = torch.maximum(m_enter.unsqueeze(-1) + cum, inner_max)  # B,h,n,L
    # the state entering each chunk: C' = decay C' + sum_s w_s k_s v_s^T (stabilised at m_end)
    m_end = m[..., -1]
    w_end = torch.exp(log_w[..., -1, :] - m_end.unsqueeze(-1))  # B,h,n,L
    kw = k * w_end.unsqueeze(-1)
    add_C = kw.transpose(-1, -2) @ v  # B,h,n,dk,dv
    add_n = kw.sum(-2)  # B,h,n,dk
    decay = torch.exp(m_enter + cum[..., -1] - m_end)  # B,h,n
    Cs, ns = [C0], [n0]
    for j in range(count):
        d = decay[..., j]
        Cs.append(torch.addcmul(add_C[..., j, :, :], d[..., None, None], Cs[-1]))
        ns.append(torch.addcmul(add_n[..., j, :], d[..., None], ns[-1]))
    C_in, n_in = torch.stack(Cs[:-1], dim=2), torch.stack(ns[:-1], dim=2)
    # outputs: h~_t = (C'_t q_t) / max(|n'_t . q_t|, exp(-m_t))
    w = torch.exp(log_w - m.unsqueeze(-1))  # B,h,n,L,L (0 above the diagonal)
    w0 = torch.exp(m_enter.unsqueeze(-1) + cum - m)  # B,h,n,L: weight of the entering state
    scores = (q @ k.transpose(-1, -2)) * w
    num = scores @ v + w0.unsqueeze(-1) * (q @ C_in)
    den = scores.sum(-1) + w0 * (q @ n_in.unsqueeze(-1)).squeeze(-1)
    h = num / torch.maximum(den.abs(), torch.exp(-m)).unsqueeze(-1)
    h = h.flatten(2, 3)
    if pad:
        h = h[:, :, :length]
    return h, (Cs[-1], ns[-1], m_end[..., -1])


class MLSTM(SequenceLayer):
    """The matrix-memory LSTM, multi-head (Beck et al. 2024, "xLSTM: Extended Long Short-Term
    Memory", arXiv:2405.04517).

    Per head: ``q_t = W_q x_t + b_q``, ``k_t = (W_k x_t + b_k) / sqrt(qk_size)``,
    ``v_t = W_v x_t + b_v``, scalar gates ``i_t = exp(i~_t)`` and ``f_t = sigmoid(f~_t)``;
    ``C_t = f_t C_{t-1} + i_t v_t k_t^T``, ``n_t = f_t n_{t-1} + i_t k_t``,
    ``h~_t = C_t q_t / max(|n_t^T q_t|, 1)``; ``h_t = o_t * h~_t`` with
    ``o_t = sigmoid(W_o x_t + b_o)``; output ``out(h)`` (a bias-free ``Linear``). Computed in the
    paper's stabilised form: ``m_t = max(log f_t + m_{t-1}, i~_t)``,
    ``i'_t = exp(i~_t - m_t)``, ``f'_t = exp(log f_t + m_{t-1} - m_t)``, and the normaliser's 1
    becomes ``exp(-m_t)``; the state is the stabilised ``(C: heads x qk_size x head_size,
    n: heads x qk_size, m: heads)`` (``C`` stored key-major, ``C^T`` of the formula above).

    ``heads`` heads of ``head_size = inner / heads`` value channels,
    ``inner = round(expand * hidden_size)``; ``qk_size`` query/key channels per head (default
    ``head_size``). Gate initialisation as the official code: gate weights 0, forget-gate biases
    ``linspace(3, 6)`` over heads (long memory), input-gate biases ``N(0, 0.1^2)``. Training runs
    chunks of ``chunk`` steps in the parallel form (default 64). As in the paper's mLSTM block,
    queries, keys and gates read a short causal depthwise convolution of the input (kernel
    ``conv_size``, default 4, with SiLU; its last ``conv_size - 1`` inputs are the state
    ``conv``; 1: none), which gives the cell the local order that its near-1 forget gates
    hardly do; values and the output gate read the input itself. The per-head norm and the
    gated up/down projection of the block are left out; block type "residual".
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        heads: int = 4,
        expand: float = 1.0,
        qk_size: int | None = None,
        conv_size: int = 4,
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError("input_size and hidden_size must be >= 1")
        if conv_size < 1:
            raise ValueError(f"conv_size must be >= 1, got {conv_size}")
        if heads < 1:
            raise ValueError(f"heads must be >= 1, got {heads}")
        if expand <= 0:
            raise ValueError(f"expand must be > 0, got {expand}")
        inner = max(1, round(hidden_size * expand))
        if inner % heads:
            raise ValueError(
                f"heads must divide round(hidden_size * expand) = {inner}, got heads={heads}"
            )
        if qk_size is not None and qk_size < 1:
            raise ValueError(f"qk_size must be >= 1, got {qk_size}")
        if chunk is not None and chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.heads, self.expand, self.chunk = heads, expand, chunk
        self.inner_size = inner
        self.head_size = inner // heads
        self.qk_size = self.head_size if qk_size is None else int(qk_size)
        self.conv_size = conv_size
        self.conv = (
            nn.Conv1d(input_size, input_size, conv_size, groups=input_size)
            if conv_size > 1
            else None
        )
        self.proj = nn.Linear(input_size, 2 * heads * self.qk_size + 2 * inner)  # q, k, v, o
        self.gates = nn.Linear(input_size, 2 * heads)  # i~, f~
        self.out = nn.Linear(inner, hidden_size, bias=False)
        with torch.no_grad():
            nn.init.zeros_(self.gates.weight)
            nn.init.normal_(self.gates.bias[:heads], std=0.1)
            self.gates.bias[heads:] = torch.linspace(3.0, 6.0, heads)

    def state_spec(self) -> tuple[StateSpec, ...]:
        conv = (StateSpec("conv", (self.input_size, self.conv_size - 1)),) if self.conv else ()
        return conv + (
            StateSpec("C", (self.heads, self.qk_size, self.head_size)),
            StateSpec("n", (self.heads, self.qk_size)),
            StateSpec("m", (self.heads,)),
        )

    def _convolved(self, x: Tensor, buffer: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``SiLU`` of the short causal depthwise convolution of ``x: B,T,F`` (after the
        ``buffer`` of the last ``conv_size - 1`` inputs, ``B,F,conv_size-1``), and the next
        buffer; ``x`` itself without a convolution (``conv_size=1``)."""
        if self.conv is None or buffer is None:
            return x, buffer
        joined = torch.cat([buffer, x.transpose(1, 2)], dim=2)
        convolved = F.silu(F.conv1d(joined, self.conv.weight, self.conv.bias, groups=x.shape[-1]))
        return convolved.transpose(1, 2), joined[:, :, -(self.conv_size - 1) :].contiguous()

    def _project(self, x: Tensor, xc: Tensor | None = None) -> tuple[Tensor, ...]:
        """``q, k, v: ...,heads,size``, ``i~, log f: ...,heads`` and ``o: ...,inner``: queries,
        keys and gates from the convolved input ``xc`` (as the xLSTM block), values and output
        gate from ``x`` (``xc`` None: ``x``)."""
        dk, heads, inner = self.qk_size, self.heads, self.inner_size
        xc = x if xc is None else xc
        split = 2 * heads * dk
        weight, bias = self.proj.weight, self.proj.bias
        q, k = F.linear(xc, weight[:split], bias[:split]).split([heads * dk, heads * dk], -1)
        v, o = F.linear(x, weight[split:], bias[split:]).split([inner, inner], dim=-1)
        q, k, v = (t.unflatten(-1, (heads, -1)) for t in (q, k, v))
        i_pre, f_pre = self.gates(xc).chunk(2, dim=-1)
        return q, k / math.sqrt(dk), v, i_pre, F.logsigmoid(f_pre), torch.sigmoid(o)

    def _split(self, state: State) -> tuple[Tensor | None, State]:
        return (state[0], tuple(state[1:])) if self.conv is not None else (None, tuple(state))

    def forward(self, x: Tensor) -> Tensor:
        return self.scan(x)[0]

    def scan(self, chunk: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if state is None:
            state = self.initial_state(chunk.shape[0], chunk.device, chunk.dtype)
        batch, length = chunk.shape[:2]
        if length == 0 and not exporting():
            return chunk.new_zeros(batch, 0, self.hidden_size), tuple(state)
        buffer, memory = self._split(state)
        convolved, buffer = self._convolved(chunk, buffer)
        q, k, v, i_pre, log_f, o = self._project(chunk, convolved)
        q, k, v, i_pre, log_f = (t.transpose(1, 2) for t in (q, k, v, i_pre, log_f))
        size = None if tracing() else (self.chunk or 64)
        h, new_state = _mlstm_chunkwise(q, k, v, i_pre, log_f, memory, size)
        out = self.out(h.transpose(1, 2).flatten(2) * o)
        check_finite(self, (out, *new_state), "lower the learning rate")
        return out, ((buffer,) if buffer is not None else ()) + tuple(new_state)

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if state is None:
            state = self.initial_state(x_t.shape[0], x_t.device, x_t.dtype)
        buffer, (C, n, m) = self._split(state)
        convolved, buffer = self._convolved(x_t.unsqueeze(1), buffer)
        q, k, v, i_pre, log_f, o = self._project(x_t, convolved[:, 0])
        m_new = torch.maximum(log_f + m, i_pre)
        f = torch.exp(log_f + m - m_new)
        i = torch.exp(i_pre - m_new)
        C = f[..., None, None] * C + (i[..., None] * k).unsqueeze(-1) * v.unsqueeze(-2)
        n = f[..., None] * n + i[..., None] * k
        num = (q.unsqueeze(-2) @ C).squeeze(-2)  # B,heads,dv
        den = (q * n).sum(-1)
        h = num / torch.maximum(den.abs(), torch.exp(-m_new)).unsqueeze(-1)
        out = self.out(h.flatten(1) * o)
        check_finite(self, (out, C, n, m_new), "lower the learning rate")
        return out, ((buffer,) if buffer is not None else ()) + (C, n, m_new)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, heads={self.heads}, head_size={self.head_size}, "
            f"qk_size={self.qk_size}, conv_size={self.conv_size}"
        )
