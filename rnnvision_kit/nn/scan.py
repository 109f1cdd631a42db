"""Parallel scan for the diagonal linear recurrence ``h_t = a_t * h_{t-1} + b_t`` (pure PyTorch).

:func:`linear_scan` runs on CPU and GPU, in any float dtype, and never divides or exponentiates a
positive number: every factor it forms is a product of gates ``a`` (so ``|factor| <= 1``), which
can only underflow to 0, never overflow. Saturated gates (``a = 1e-30``, ``a = 0``, ``a = 1``)
are therefore exact, where a scan that divides by cumulative products (``b_s / A_s``, or
``exp(-L_s)`` in log space) overflows to inf/NaN once a chunk's decay passes the dtype's range.

Design (two-level chunked scan, ``T = n * C``; time viewed as ``B, n, C, D``, no copy when ``C``
divides ``T``, otherwise padded with ``a = 1, b = 0``):

1. every chunk's final state from a zero start, all ``n`` chunks at once: a Python loop over the
   ``C`` positions, each one fused ``addcmul`` over ``B*n*D`` values; and each chunk's total
   decay ``P_k = prod(a)`` (one reduction);
2. the state entering each chunk, ``H_k = P_{k-1} * H_{k-1} + end_{k-1}``: a loop of ``n`` steps
   over ``B*D`` values (``H_0`` = the initial state);
3. the recurrence itself inside every chunk from its true entering state, all chunks at once
   (again ``C`` fused ``addcmul``): exactly the sequential loop's arithmetic, so the result
   matches it to rounding.

That is ``2C + n`` kernels (``C`` about ``sqrt(T) / 2``, :func:`default_chunk`) and a few passes
over the data, instead of the ``T`` kernels of a sequential loop, the ``C`` times larger ``C x C``
decay matrices of an SSD-style "segment sum", or the ``exp(-L_s)`` factors of a log-space scan.
The backward pass is the same scan run backwards in time (``g_t = dy_t + a_{t+1} g_{t+1}``;
``db = g``, ``da = g * h_{t-1}``, ``dh0 = a_1 g_1``), in a custom
:class:`torch.autograd.Function`, so autograd stores only ``a``, ``h`` and ``h0``. The loops are
plain Python, so an exported graph would fix ``T``: while tracing (ONNX export), layers use
:func:`masked_scan` instead, a loop-free ``O(T^2)`` form for the short chunks a stream feeds.

Complex gates (LRU-style, ``|a| <= 1``) use the same kernels; the backward conjugates ``a`` and
``h`` (PyTorch's convention for complex gradients), so a complex variant needs no new code.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = [
    "EXPORT_PIECE",
    "chunked_scan",
    "default_chunk",
    "export_pieces",
    "export_scan",
    "linear_scan",
    "masked_scan",
    "sequential_scan",
]


def default_chunk(length: int) -> int:
    """The chunk size :func:`linear_scan` uses for ``length`` steps: the power of two nearest
    ``sqrt(T) / 2``, within 8..64. Measured on CPU (B=32, D=128, forward + backward, 1 thread):
    T=784 takes 26 ms at C=16 against 36 ms at 32 and 50 ms at 64; T=4096 is memory-bound
    (286-324 ms for C from 8 to 256); T=64 is flat for C from 8 to 32."""
    if length <= 1:
        return 1
    return min(64, max(8, 2 ** round(math.log2(math.sqrt(length) / 2))))


def sequential_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """Reference: ``h_t = a_t * h_{t-1} + b_t`` one step at a time. ``a, b: B,T,D``; ``h0: B,D``
    (zeros when None). Returns ``h: B,T,D``. Differentiable by plain autograd; slow."""
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, 1)


def chunked_scan(a: Tensor, b: Tensor, h0: Tensor, chunk: int, reverse: bool = False) -> Tensor:
    """The two-level chunked scan, without autograd (for a layer's own backward pass, as
    :class:`~rnnvision_kit.nn.Mamba`'s). ``a, b: B,T,D``; ``h0: B,D``. ``reverse``: run
    backwards in time, ``h_t = a_t * h_{t+1} + b_t`` with ``h0`` after the last step."""
    batch, length, dim = b.shape
    chunk = min(chunk, length)
    n = -(-length // chunk)
    pad = n * chunk - length
    if pad:  # a = 1, b = 0 after the end (before the start in reverse): no effect on real steps
        where = (0, 0, pad, 0) if reverse else (0, 0, 0, pad)
        a = F.pad(a, where, value=1.0)
        b = F.pad(b, where, value=0.0)
    a4 = a.reshape(batch, n, chunk, dim)
    b4 = b.reshape(batch, n, chunk, dim)
    # ``first``: a chunk's first position in scan order; ``step``: offset of the previous one
    if reverse:
        first, inner, step = chunk - 1, range(chunk - 2, -1, -1), 1
    else:
        first, inner, step = 0, range(1, chunk), -1
    # 1. every chunk's final state from a zero start, all chunks at once, and its total decay
    end = b4[:, :, first].clone()
    for j in inner:
        torch.addcmul(b4[:, :, j], a4[:, :, j], end, out=end)
    total = a4.prod(dim=2)  # a product of gates: |total| <= 1, no overflow
    # 2. the state entering each chunk: H_k = total_{k-1} * H_{k-1} + end_{k-1}
    carry = torch.empty_like(end)
    ks = range(n - 2, -1, -1) if reverse else range(1, n)
    carry[:, n - 1 if reverse else 0] = h0
    for k in ks:
        prev = k + step
        torch.addcmul(end[:, prev], total[:, prev], carry[:, prev], out=carry[:, k])
    # 3. the recurrence itself inside every chunk, from its true entering state
    h = torch.empty_like(b4)
    torch.addcmul(b4[:, :, first], a4[:, :, first], carry, out=h[:, :, first])
    for j in inner:
        torch.addcmul(b4[:, :, j], a4[:, :, j], h[:, :, j + step], out=h[:, :, j])
    h = h.reshape(batch, n * chunk, dim)
    if not pad:
        return h
    return h[:, pad:] if reverse else h[:, :length]


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor, chunk: int) -> Tensor:
        h = chunked_scan(a, b, h0, chunk)
        ctx.save_for_backward(a, h, h0)
        ctx.chunk = chunk
        return h

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        a, h, h0 = ctx.saved_tensors
        # g_t = dy_t + conj(a_{t+1}) g_{t+1}: the same scan, backwards in time.
        a_next = torch.empty_like(a)
        a_next[:, :-1] = a[:, 1:].conj()
        a_next[:, -1] = 0
        g = chunked_scan(a_next, grad_h.contiguous(), torch.zeros_like(h0), ctx.chunk, True)
        grad_a = grad_b = grad_h0 = None
        if ctx.needs_input_grad[0]:
            grad_a = torch.empty_like(g)
            torch.mul(g[:, 1:], h[:, :-1].conj(), out=grad_a[:, 1:])
            torch.mul(g[:, 0], h0.conj(), out=grad_a[:, 0])
        if ctx.needs_input_grad[1]:
            grad_b = g
        if ctx.needs_input_grad[2]:
            grad_h0 = g[:, 0] * a[:, 0].conj()
        return grad_a, grad_b, grad_h0, None


def linear_scan(
    a: Tensor, b: Tensor, h0: Tensor | None = None, *, chunk: int | None = None
) -> Tensor:
    """All states of ``h_t = a_t * h_{t-1} + b_t`` (elementwise, per channel), in parallel.

    ``a``: the gates, ``B,T,D`` (or broadcastable to ``b``), values in ``[0, 1]`` (complex:
    ``|a| <= 1``); ``b``: the inputs ``B,T,D``; ``h0``: the state before step 1, ``B,D`` (zeros
    when None). Returns ``h: B,T,D`` (``h[:, -1]`` is the state to carry into the next chunk).
    ``chunk``: the chunk length, :func:`default_chunk` when None. Differentiable in ``a``, ``b``
    and ``h0``; the result equals :func:`sequential_scan` up to rounding, whatever the gates.
    """
    if b.dim() != 3:
        raise ValueError(f"linear_scan expects b of shape B,T,D, got {tuple(b.shape)}")
    if b.shape[1] == 0:
        return b
    a = a.expand_as(b).contiguous()
    b = b.contiguous()
    h0 = torch.zeros_like(b[:, 0]) if h0 is None else h0.expand_as(b[:, 0]).contiguous()
    if b.shape[1] == 1:  # one step: no scan
        return torch.addcmul(b[:, 0], a[:, 0], h0).unsqueeze(1)
    chunk = default_chunk(b.shape[1]) if chunk is None else int(chunk)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    return _LinearScan.apply(a, b, h0, chunk)


def masked_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """:func:`linear_scan` without loops, for export: ``h_t = sum_{s<=t} exp(L_t - L_s) b_s +
    exp(L_t) h0`` with ``L = cumsum(log a)``. Every factor is ``exp`` of a sum of ``log a <= 0``
    (never above 1), masked to ``s <= t``; the positions come from the input's own shape, so an
    ONNX graph traced through it keeps a dynamic time axis. ``O(T^2 D)`` memory: meant for the
    short chunks of streaming, not for training. Real gates in ``[0, 1]`` only."""
    if h0 is None:
        h0 = torch.zeros_like(b[:, 0])
    a = a.expand_as(b)
    log_a = torch.log(a.clamp_min(torch.finfo(b.dtype).tiny))
    cum = torch.cumsum(log_a, dim=1)  # B,T,D
    position = torch.cumsum(torch.ones_like(b[:, :, :1]), dim=1)  # B,T,1: 1..T
    later = position.unsqueeze(2) >= position.unsqueeze(1)  # B,T,S,1: s <= t
    diff = cum.unsqueeze(2) - cum.unsqueeze(1)  # B,T,S,D
    weights = torch.exp(torch.where(later, diff, torch.full_like(diff, -math.inf)))
    return (weights * b.unsqueeze(1)).sum(2) + torch.exp(cum) * h0.unsqueeze(1)


EXPORT_PIECE = 64  # longest piece export_scan handles at once (O(piece^2) memory per piece)


def export_pieces(length: int) -> list[slice]:
    """The time slices a traced layer scans one after another: the whole input (one
    ``slice(None)``, which keeps a traced graph's time axis dynamic) when it has at most
    :data:`EXPORT_PIECE` steps, else consecutive pieces of that length (a graph traced on a long
    sequence, e.g. 784 pixels, has that fixed length anyway, and memory stays ``O(T * piece)``
    instead of ``O(T^2)``)."""
    if length <= EXPORT_PIECE:
        return [slice(None)]
    return [slice(start, start + EXPORT_PIECE) for start in range(0, length, EXPORT_PIECE)]


def export_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """What a layer runs while traced for export: :func:`masked_scan` over each of
    :func:`export_pieces`, the state carried from piece to piece."""
    a = a.expand_as(b)
    pieces, state = [], h0
    for piece in export_pieces(b.shape[1]):
        h = masked_scan(a[:, piece], b[:, piece], state)
        pieces.append(h)
        state = h[:, -1]
    return torch.cat(pieces, 1) if len(pieces) > 1 else pieces[0]
