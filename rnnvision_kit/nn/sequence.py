"""The sequence-layer contract: one interface for every temporal layer, recurrent or not.

A :class:`SequenceLayer` maps ``B,T,F`` to ``B,T,H`` (``F = input_size``, ``H = hidden_size``):

- parallel mode, for training: ``forward(x: B,T,F) -> y: B,T,H``, from the zero state;
- streaming, from a carried state: ``scan(chunk: B,T,F, state) -> (y: B,T,H, state)`` for a chunk
  of steps and ``step(x_t: B,F, state) -> (y_t: B,H, state)`` for one; ``state`` None is
  :meth:`~SequenceLayer.initial_state`. ``y[:, t]`` equals ``forward`` on all steps so far;
- the state is always a tuple of tensors, each ``B, *shape``, described by
  :meth:`~SequenceLayer.state_spec` (names and shapes without the batch), from which export
  makes explicit ONNX inputs and outputs;
- ``causal``: whether ``y[:, t]`` depends only on steps ``<= t``; a layer that cannot stream says
  why in one line, :attr:`~SequenceLayer.stream_blocker` (None when it can).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rnnvision_kit.errors import RnnkitError

__all__ = ["SequenceLayer", "State", "StateSpec", "check_finite", "exporting", "tracing"]

State = tuple[Tensor, ...]


def tracing() -> bool:
    """True while ``torch.onnx.export`` traces the model: a layer's ``scan`` then takes a
    loop-free form (:func:`~rnnvision_kit.nn.scan.masked_scan`) so the graph's time axis stays
    dynamic; Python loops over time would be unrolled to the traced length."""
    return torch.jit.is_tracing()


def exporting() -> bool:
    """True while traced (ONNX) or compiled (``torch.compile``, ``torch.export``): data-dependent
    checks such as :func:`check_finite` are skipped then."""
    return tracing() or torch.compiler.is_compiling()


def check_finite(
    layer: nn.Module, tensors: tuple[Tensor, ...], hint: str, what: str = "the recurrence"
) -> None:
    """A one-line :class:`~rnnvision_kit.errors.RnnkitError` naming ``layer`` and what to change
    (``hint``) when any of ``tensors`` is not finite; nothing while :func:`exporting`."""
    if exporting() or all(bool(torch.isfinite(t).all()) for t in tensors):
        return
    raise RnnkitError(
        f"{type(layer).__name__}: {what} went non-finite (parameters or input not finite); {hint}"
    )


@dataclass(frozen=True)
class StateSpec:
    """One tensor of a layer's streaming state.

    ``name``: a stable identifier (an export input ``state_<name>`` and output
    ``next_state_<name>``, for example); ``shape``: the shape without the leading batch dimension;
    ``dtype``: ``"param"`` when it follows the layer's parameters (float32, float64, ...),
    otherwise a torch dtype name such as ``"int64"``.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "param"


class SequenceLayer(nn.Module):
    """Base class of the sequence layers: ``B,T,F -> B,T,H``, see the module docstring.

    Subclasses set ``input_size`` and ``hidden_size``, implement :meth:`forward`,
    :meth:`state_spec` and (if causal) :meth:`scan`; :meth:`step` and :meth:`initial_state`
    have defaults built on those. A non-causal layer sets ``causal = False`` and overrides
    :attr:`stream_blocker` with its one-line reason.
    """

    causal: bool = True
    input_size: int
    hidden_size: int

    @property
    def stream_blocker(self) -> str | None:
        """Why this layer cannot run step by step with a carried state, or None if it can."""
        if self.causal:
            return None
        return f"{type(self).__name__} is not causal (each output depends on later steps)"

    def check_streamable(self) -> None:
        """Raise ``ValueError`` with :attr:`stream_blocker` if this layer cannot stream."""
        blocker = self.stream_blocker
        if blocker is not None:
            raise ValueError(f"this layer cannot stream: {blocker}")

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Parallel mode: ``x: B,T,F -> y: B,T,H`` from the zero state."""
        raise NotImplementedError

    def state_spec(self) -> tuple[StateSpec, ...]:  # pragma: no cover - abstract
        """Names and per-sample shapes of the state tensors, in the order of the state tuple."""
        raise NotImplementedError

    def scan(self, chunk: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Streaming over a chunk: ``chunk: B,T,F`` and the state before it -> ``y: B,T,H`` and
        the state after its last step (``state`` None: :meth:`initial_state`)."""
        self.check_streamable()
        raise NotImplementedError(f"{type(self).__name__} does not implement scan")

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step: ``x_t: B,F`` and the state -> ``y_t: B,H`` and the next state. The default
        runs :meth:`scan` on a chunk of length 1."""
        y, state = self.scan(x_t.unsqueeze(1), state)
        return y[:, 0], state

    def initial_state(
        self,
        batch: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> State:
        """The state before the first step: zeros shaped by :meth:`state_spec`, on the layer's
        device and in its parameters' dtype unless given."""
        param = next(self.parameters(), None)
        if device is None:
            device = param.device if param is not None else None
        if dtype is None:
            dtype = param.dtype if param is not None else torch.get_default_dtype()
        return tuple(
            torch.zeros(
                (batch, *spec.shape),
                device=device,
                dtype=dtype if spec.dtype == "param" else getattr(torch, spec.dtype),
            )
            for spec in self.state_spec()
        )

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"
