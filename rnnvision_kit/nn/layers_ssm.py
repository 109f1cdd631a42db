"""LRU and S5: complex diagonal linear recurrences that train in parallel (:func:`linear_scan`).

Both run ``h_t = lambda * h_{t-1} + Bbar x_t`` with a complex diagonal ``lambda`` (``|lambda| < 1``
by construction) that does not depend on the input, and read out a real ``y_t``:

- :class:`LRU`: Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu, De (2023), "Resurrecting
  Recurrent Neural Networks for Long Sequences", ICML, arXiv:2303.06349;
- :class:`S5`: Smith, Warrington, Linderman (2023), "Simplified State Space Layers for Sequence
  Modeling", ICLR, arXiv:2208.04933: a diagonal MIMO state-space model discretised by
  zero-order hold with a learned time step per state.

One code path serves the three modes: ``forward`` and ``scan`` are :func:`linear_scan` over
complex gates (``lambda`` broadcast over time), ``step`` is one ``h = lambda * h + b``; so
parallel, chunked and step-by-step results agree to rounding. The complex state is carried as
two real tensors (``h_re``, ``h_im``), so that an exported graph has only real inputs and
outputs. The layers are the bare recurrences (the papers' blocks add a norm, a residual and an
MLP/GLU around them; a head's stack does that). When ``input_size != hidden_size`` a bias-free
``Linear(F, H)`` maps the input to the ``H`` channels the recurrence reads (and its ``D x``
skip term uses).

Parameters are real tensors (real and imaginary parts apart), so ``.to(torch.float64)`` gives a
complex128 recurrence. A non-finite final state (parameters or input blown up) raises
:class:`~rnnvision_kit.errors.RnnkitError` with one line naming the layer; the check is skipped
while tracing or compiling (export).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnvision_kit.errors import RnnkitError
from rnnvision_kit.nn.scan import export_pieces, linear_scan
from rnnvision_kit.nn.sequence import SequenceLayer, State, StateSpec, exporting, tracing

__all__ = ["LRU", "S5", "hippo_eigenvalues"]


def hippo_eigenvalues(size: int) -> Tensor:
    """Eigenvalues of the normal part of HiPPO-LegS (S5's "HiPPO-N" initialisation), float64
    complex, ``size`` of them sorted by imaginary part: ``-1/2 + i w`` with ``w`` the
    eigenvalues of its skew-symmetric part (they come in ``+-`` pairs)."""
    n = torch.arange(size, dtype=torch.float64)
    q = torch.sqrt(2 * n + 1)
    hippo = -(torch.tril(q[:, None] * q[None, :]) - torch.diag(n))
    p = torch.sqrt(n + 0.5)
    normal = hippo + p[:, None] * p[None, :]  # -1/2 I + a skew-symmetric matrix
    skew = normal + 0.5 * torch.eye(size, dtype=torch.float64)
    w = torch.linalg.eigvalsh(skew.to(torch.complex128) * -1j)  # skew * -i is Hermitian
    return torch.complex(torch.full_like(w, -0.5), w)


def _powers_scan(
    log_r: Tensor, angle: Tensor, b_re: Tensor, b_im: Tensor, h0_re: Tensor, h0_im: Tensor
) -> tuple[Tensor, Tensor]:
    """The states ``h_t = lambda^t h_0 + sum_{s<=t} lambda^(t-s) b_s`` of one piece in real
    arithmetic (``lambda = e^(log_r + i angle)``, constant in time), without loops; the positions
    come from the input's shape, so a traced graph keeps its time axis dynamic."""
    position = torch.cumsum(torch.ones_like(b_re[:, :, :1]), dim=1)  # B,T,1: 1..T
    lag = position.unsqueeze(2) - position.unsqueeze(1)  # B,T,S,1: t - s
    later = lag >= 0
    lag = lag.clamp_min(0)
    decay = torch.where(later, torch.exp(lag * log_r), torch.zeros_like(lag * log_r))
    p_re, p_im = decay * torch.cos(lag * angle), decay * torch.sin(lag * angle)
    h_re = (p_re * b_re.unsqueeze(1) - p_im * b_im.unsqueeze(1)).sum(2)
    h_im = (p_re * b_im.unsqueeze(1) + p_im * b_re.unsqueeze(1)).sum(2)
    first = torch.exp(position * log_r)  # lambda^t for the state before the piece
    q_re, q_im = first * torch.cos(position * angle), first * torch.sin(position * angle)
    h0_re, h0_im = h0_re.unsqueeze(1), h0_im.unsqueeze(1)
    return h_re + q_re * h0_re - q_im * h0_im, h_im + q_re * h0_im + q_im * h0_re


class _ComplexDiagonal(SequenceLayer):
    """Shared body. A subclass defines :meth:`discrete` (``lambda`` and ``Bbar``) and sets
    ``modes`` (complex states), ``C_re``/``C_im`` (``H x modes``), ``D`` (``H``) and
    ``out_scale`` (2 for a conjugate-symmetric S5)."""

    out_scale = 1.0
    C_re: nn.Parameter  # set by the subclass, as C_im and D
    C_im: nn.Parameter
    D: nn.Parameter
    hint = "lower the learning rate"

    def __init__(self, input_size: int, hidden_size: int, modes: int, chunk: int | None) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError("input_size and hidden_size must be >= 1")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.modes = modes
        self.chunk = chunk
        self.proj: nn.Module = (
            nn.Linear(input_size, hidden_size, bias=False)
            if input_size != hidden_size
            else nn.Identity()
        )

    def discrete(self) -> tuple[Tensor, Tensor]:
        """``lambda: modes`` (complex) and ``Bbar: modes x H`` (complex) of the recurrence."""
        raise NotImplementedError  # pragma: no cover

    def discrete_real(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """:meth:`discrete` in real arithmetic, for export (ONNX has no complex numbers):
        ``log|lambda|``, ``arg lambda`` (each ``modes``) and ``Bbar``'s real and imaginary parts
        (each ``modes x H``)."""
        raise NotImplementedError  # pragma: no cover

    def _scan_real(self, chunk: Tensor, state: State | None) -> tuple[Tensor, State]:
        """:meth:`scan` without complex numbers or loops over time (export): ``h_t = lambda^t
        h_0 + sum_{s<=t} lambda^(t-s) b_s`` with ``lambda^k = |lambda|^k e^(i k arg lambda)``,
        ``k`` masked to ``s <= t`` (so every power has ``|.| <= 1``); over each of
        :func:`~rnnvision_kit.nn.scan.export_pieces`, as
        :func:`~rnnvision_kit.nn.scan.export_scan`."""
        if state is None:
            state = self.initial_state(chunk.shape[0], chunk.device, chunk.dtype)
        u = self.proj(chunk)
        log_r, angle, b_re_w, b_im_w = self.discrete_real()
        b_re, b_im = F.linear(u, b_re_w), F.linear(u, b_im_w)  # B,T,M
        h_re, h_im = state
        pieces = []
        for piece in export_pieces(u.shape[1]):
            h_re, h_im = _powers_scan(log_r, angle, b_re[:, piece], b_im[:, piece], h_re, h_im)
            pieces.append((h_re, h_im))
            h_re, h_im = h_re[:, -1], h_im[:, -1]
        all_re, all_im = (torch.cat(parts, 1) for parts in zip(*pieces, strict=True))
        weight_re, weight_im = self.C_re * self.out_scale, self.C_im * self.out_scale
        y = F.linear(all_re, weight_re) - F.linear(all_im, weight_im)
        return torch.addcmul(y, u, self.D), (h_re, h_im)

    def eigenvalues(self) -> Tensor:
        """The discrete ``lambda`` (complex, ``modes``), without gradient."""
        with torch.no_grad():
            return self.discrete()[0]

    def state_spec(self) -> tuple[StateSpec, ...]:
        return (StateSpec("h_re", (self.modes,)), StateSpec("h_im", (self.modes,)))

    def _inputs(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``u = proj(x)``, ``lambda`` and ``b = Bbar u`` (complex, ``...,modes``)."""
        u = self.proj(x)
        lam, bbar = self.discrete()
        # one real matmul into interleaved (re, im) pairs, viewed as complex without a copy
        weight = torch.view_as_real(bbar).transpose(1, 2).reshape(2 * self.modes, -1)
        b = F.linear(u, weight).unflatten(-1, (self.modes, 2))
        return u, lam, torch.view_as_complex(b)

    def _outputs(self, h: Tensor, u: Tensor) -> Tensor:
        """``y = out_scale * Re(C h) + D u`` (``Re(C h) = C_re h_re - C_im h_im``)."""
        weight = torch.stack([self.C_re, -self.C_im], -1).flatten(1) * self.out_scale
        y = F.linear(torch.view_as_real(h).flatten(-2), weight)
        return torch.addcmul(y, u, self.D)

    def _check(self, h_last: Tensor) -> None:
        if exporting() or bool(torch.isfinite(h_last).all()):
            return
        radius = self.eigenvalues().abs().max().item()
        raise RnnkitError(
            f"{type(self).__name__}: the recurrence went non-finite (largest |lambda| = "
            f"{radius:.6g}, parameters or input not finite); {self.hint}"
        )

    def _complex_state(self, state: State | None, x: Tensor) -> Tensor:
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        return torch.complex(state[0], state[1])

    def forward(self, x: Tensor) -> Tensor:
        return self.scan(x)[0]

    def scan(self, chunk: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if tracing():
            return self._scan_real(chunk, state)
        h0 = self._complex_state(state, chunk)
        if chunk.shape[1] == 0:
            return chunk.new_zeros((*chunk.shape[:2], self.hidden_size)), (h0.real, h0.imag)
        u, lam, b = self._inputs(chunk)
        h = linear_scan(lam, b, h0, chunk=self.chunk)
        last = h[:, -1]
        self._check(last)
        return self._outputs(h, u), (last.real.contiguous(), last.imag.contiguous())

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        h = self._complex_state(state, x_t)
        u, lam, b = self._inputs(x_t)
        h = lam * h + b
        self._check(h)
        return self._outputs(h, u), (h.real.contiguous(), h.imag.contiguous())

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, modes={self.modes}"


class LRU(_ComplexDiagonal):
    """Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for
    Long Sequences", arXiv:2303.06349).

    ``h_t = lambda * h_{t-1} + gamma * (B u_t)``, ``y_t = Re(C h_t) + D * u_t`` with ``u = x``
    (or a bias-free ``Linear(F, H)`` of it when ``input_size != hidden_size``), complex
    ``lambda = exp(-exp(nu_log) + i exp(theta_log))`` (so ``|lambda| < 1`` for any parameters),
    ``state_size`` complex modes (default ``hidden_size``).

    Initialisation as the paper: ring initialisation, ``|lambda|`` uniform on the ring
    ``[r_min, r_max]`` (uniform in area) and phase uniform in ``[0, max_phase]``; the
    normalisation ``gamma = sqrt(1 - |lambda|^2)``, trainable through ``gamma_log`` (the paper's
    choice); ``B ~ CN(0, 1/H)`` (real and imaginary parts ``N(0, 1/(2H))``),
    ``C ~ CN(0, 1/N)``, ``D ~ N(0, 1)``. The paper's long-range settings are ``r_min=0.9``,
    ``r_max=0.999``, ``max_phase=pi/10``.
    """

    hint = "lower the learning rate or r_max"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        state_size: int | None = None,
        r_min: float = 0.4,
        r_max: float = 0.99,
        max_phase: float = 2 * math.pi,
        chunk: int | None = None,
    ) -> None:
        modes = hidden_size if state_size is None else int(state_size)
        if modes < 1:
            raise ValueError(f"state_size must be >= 1, got {state_size}")
        if not 0.0 <= r_min < r_max < 1.0:
            raise ValueError(f"need 0 <= r_min < r_max < 1, got r_min={r_min}, r_max={r_max}")
        if not 0.0 < max_phase <= 2 * math.pi:
            raise ValueError(f"max_phase must be in (0, 2*pi], got {max_phase}")
        super().__init__(input_size, hidden_size, modes, chunk)
        self.r_min, self.r_max, self.max_phase = r_min, r_max, max_phase
        H, N = hidden_size, modes
        u1, u2 = torch.rand(N, dtype=torch.float64), torch.rand(N, dtype=torch.float64)
        # |lambda|^2 uniform on [r_min^2, r_max^2]; nu = -log|lambda| > 0
        nu = -0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2)
        theta = (max_phase * u2).clamp(min=1e-12)
        self.nu_log = nn.Parameter(torch.log(nu).float())
        self.theta_log = nn.Parameter(torch.log(theta).float())
        self.gamma_log = nn.Parameter((0.5 * torch.log1p(-torch.exp(-2 * nu))).float())
        self.B_re = nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H))
        self.B_im = nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H))
        self.C_re = nn.Parameter(torch.randn(H, N) / math.sqrt(2 * N))
        self.C_im = nn.Parameter(torch.randn(H, N) / math.sqrt(2 * N))
        self.D = nn.Parameter(torch.randn(H))

    def discrete_real(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        gamma = torch.exp(self.gamma_log)[:, None]
        return (
            -torch.exp(self.nu_log),
            torch.exp(self.theta_log),
            self.B_re * gamma,
            self.B_im * gamma,
        )

    def discrete(self) -> tuple[Tensor, Tensor]:
        lam = torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))
        gamma = torch.exp(self.gamma_log)[:, None]
        return lam, torch.complex(self.B_re * gamma, self.B_im * gamma)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, r_min={self.r_min}, r_max={self.r_max}, "
            f"max_phase={self.max_phase:.4g}"
        )


class S5(_ComplexDiagonal):
    """S5, a diagonal MIMO state-space layer (Smith, Warrington, Linderman 2023, "Simplified
    State Space Layers for Sequence Modeling", arXiv:2208.04933).

    Continuous ``h' = Lambda h + B u``, ``y = C h + D u`` with a diagonal complex ``Lambda``
    (``Re Lambda = -exp(log_neg_re) < 0``: stable for any parameters) shared by all ``H`` input
    channels, discretised by zero-order hold with a learned time step per state
    (``log_dt``, log-uniform in ``[dt_min, dt_max]`` at init): ``lambda = exp(Lambda dt)``,
    ``Bbar = (lambda - 1) / Lambda * B``. ``state_size`` ``P`` (default ``hidden_size``, even) is
    the real state size: conjugate symmetry keeps ``P/2`` complex modes and
    ``y_t = 2 Re(C h_t) + D * u_t``. ``u`` as :class:`LRU`.

    ``init="hippo"`` (the paper's): ``Lambda`` = the eigenvalues of the normal part of HiPPO-LegS
    (one block), the half with non-negative imaginary part; ``init="lin"``: S4D-Lin,
    ``-1/2 + i pi n``. ``B ~ CN(0, 1/H)`` and ``C ~ CN(0, 1/P)`` are drawn in the eigenbasis
    (the paper draws them real and rotates them by the eigenvectors; same scale).
    """

    out_scale = 2.0
    hint = "lower the learning rate or dt_max"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        state_size: int | None = None,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        init: str = "hippo",
        chunk: int | None = None,
    ) -> None:
        size = hidden_size if state_size is None else int(state_size)
        if size < 2 or size % 2:
            raise ValueError(f"state_size must be even and >= 2, got {state_size}")
        if not 0.0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        if init not in ("hippo", "lin"):
            raise ValueError(f"init must be 'hippo' or 'lin', got {init!r}")
        modes = size // 2
        super().__init__(input_size, hidden_size, modes, chunk)
        self.state_size, self.dt_min, self.dt_max, self.init = size, dt_min, dt_max, init
        H = hidden_size
        if init == "hippo":
            eig = hippo_eigenvalues(size)[modes:]  # the non-negative imaginary parts
        else:
            eig = torch.complex(
                torch.full((modes,), -0.5, dtype=torch.float64),
                math.pi * torch.arange(modes, dtype=torch.float64),
            )
        self.log_neg_re = nn.Parameter(torch.log(-eig.real).float())
        self.im = nn.Parameter(eig.imag.float())
        log_dt = torch.rand(modes) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)
        self.B_re = nn.Parameter(torch.randn(modes, H) / math.sqrt(2 * H))
        self.B_im = nn.Parameter(torch.randn(modes, H) / math.sqrt(2 * H))
        self.C_re = nn.Parameter(torch.randn(H, modes) / math.sqrt(2 * size))
        self.C_im = nn.Parameter(torch.randn(H, modes) / math.sqrt(2 * size))
        self.D = nn.Parameter(torch.randn(H))

    def discrete_real(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        re, im = -torch.exp(self.log_neg_re), self.im  # Lambda
        dt = torch.exp(self.log_dt)
        step_re, step_im = re * dt, im * dt
        # (exp(step) - 1) / Lambda, exp(step) - 1 = (e^re - 1) cos - 2 sin^2(im / 2) + i e^re sin
        # (ONNX has no expm1: e^re - 1 loses a few digits at the smallest time steps)
        num_re = (torch.exp(step_re) - 1) * torch.cos(step_im) - 2 * torch.sin(step_im / 2) ** 2
        num_im = torch.exp(step_re) * torch.sin(step_im)
        norm = re * re + im * im
        coef_re = ((num_re * re + num_im * im) / norm)[:, None]
        coef_im = ((num_im * re - num_re * im) / norm)[:, None]
        b_re = coef_re * self.B_re - coef_im * self.B_im
        b_im = coef_re * self.B_im + coef_im * self.B_re
        return step_re, step_im, b_re, b_im

    def discrete(self) -> tuple[Tensor, Tensor]:
        Lambda = torch.complex(-torch.exp(self.log_neg_re), self.im)
        step = Lambda * torch.exp(self.log_dt)
        coef = (torch.expm1(step) / Lambda)[:, None]  # (lambda - 1) / Lambda, exact for small dt
        return torch.exp(step), coef * torch.complex(self.B_re, self.B_im)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, state_size={self.state_size}, dt_min={self.dt_min}, "
            f"dt_max={self.dt_max}, init={self.init!r}"
        )
